//! The session pool, from many threads, on every runtime.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use boxshell::Error;
use boxshell::pool::Pool;

use crate::ensure;
use crate::harness::{Fixture, engine, run_container, tag, unique};
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("pool_reuses_the_session_and_its_state", pool_reuses_the_session_and_its_state),
    ("pool_never_interleaves_one_container", pool_never_interleaves_one_container),
    ("pool_opens_once_under_a_race", pool_opens_once_under_a_race),
    ("pool_runs_containers_in_parallel", pool_runs_containers_in_parallel),
    ("pool_replaces_a_dead_session", pool_replaces_a_dead_session),
    ("pool_reaps_idle_but_not_in_use", pool_reaps_idle_but_not_in_use),
    ("pool_background_reaper_stops_with_the_pool", pool_background_reaper_stops_with_the_pool),
    ("pool_close_while_in_use_and_close_all", pool_close_while_in_use_and_close_all),
];

/// Pool tests that need containers of their own.
pub const CONTAINER_TESTS: &[(&str, Test<Fixture>)] =
    &[("pool_container_gone_is_an_error_then_a_new_session", pool_container_gone_is_an_error_then_a_new_session)];

fn pool(fx: &Fixture) -> Pool {
    Pool::builder(fx.factory()).build()
}

/// The target to use for a second "container" (any name for the local runtime).
fn second(fx: &Fixture) -> (String, Option<Cleanup>) {
    if !fx.in_container() {
        return (fx.other_host(), None);
    }
    let name = unique("bx-pool");
    run_container(&fx.engine, &name).expect("second container");
    (name.clone(), Some(Cleanup(fx.engine.clone(), name)))
}

struct Cleanup(boxshell::Runtime, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        crate::harness::remove_container(&self.0, &self.1);
    }
}

fn pool_reuses_the_session_and_its_state(fx: &Fixture) -> R {
    let pool = pool(fx);
    let id = {
        let mut sh = pool.get_or_create(&fx.container)?;
        sh.exec("cd /tmp; export POOLED=yes")?.check()?;
        sh.id()
    };
    let mut sh = pool.get_or_create(&fx.container)?;
    assert_eq!(sh.id(), id);
    assert_eq!(sh.exec("echo $PWD $POOLED")?.stdout, b"/tmp yes\n");
    drop(sh);
    let info = pool.list();
    assert_eq!(info.len(), 1);
    let i = &info[0];
    assert_eq!(
        (i.id, i.container.as_str(), &i.runtime, i.alive, i.in_use, i.commands),
        (id, fx.container.as_str(), &fx.runtime, true, false, 2)
    );
    assert!(i.busy > Duration::ZERO && i.busy <= i.uptime && i.idle <= i.uptime, "{i:?}");
    Ok(())
}

fn pool_never_interleaves_one_container(fx: &Fixture) -> R {
    let pool = pool(fx);
    let threads = 4;
    let per = 15;
    std::thread::scope(|s| -> R {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let pool = &pool;
                let container = fx.container.as_str();
                s.spawn(move || -> Result<(), String> {
                    for i in 0..per {
                        let mut sh = pool.get_or_create(container).map_err(|e| e.to_string())?;
                        // A shared variable: any interleaving would show in it.
                        let cmd = format!("N=t{t}i{i}; echo start-$N; sleep 0.01; echo end-$N");
                        let out = sh.exec(&cmd).map_err(|e| e.to_string())?;
                        let want = format!("start-t{t}i{i}\nend-t{t}i{i}\n");
                        if out.stdout != want.as_bytes() {
                            return Err(format!("interleaved: {:?}", out.stdout_str()));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread")?;
        }
        Ok(())
    })?;
    let info = pool.list();
    ensure!(info.len() == 1 && info[0].commands == threads * per, "{info:?}");
    Ok(())
}

fn pool_opens_once_under_a_race(fx: &Fixture) -> R {
    let pool = pool(fx);
    let n = 8;
    let barrier = Barrier::new(n);
    let pids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let mut sh = pool.get_or_create(&fx.container).expect("get");
                    sh.exec("echo $$").expect("exec").stdout_str().trim().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    ensure!(pids.iter().all(|p| p == &pids[0]), "several shells: {pids:?}");
    ensure!(pool.list().len() == 1, "{:?}", pool.list());
    Ok(())
}

fn pool_runs_containers_in_parallel(fx: &Fixture) -> R {
    let pool = pool(fx);
    let (other, _cleanup) = second(fx);
    // Warm both, so opening does not count.
    pool.get_or_create(&fx.container)?.exec("true")?;
    pool.get_or_create(&other)?.exec("true")?;
    let held = Barrier::new(2);
    std::thread::scope(|s| -> R {
        let slow = s.spawn(|| {
            let mut sh = pool.get_or_create(&fx.container).expect("get");
            held.wait();
            sh.exec("sleep 1.5").expect("exec");
        });
        held.wait();
        let start = Instant::now();
        let out = pool.get_or_create(&other)?.exec("echo quick")?;
        let took = start.elapsed();
        slow.join().expect("thread");
        ensure!(out.stdout == b"quick\n", "{out:?}");
        ensure!(took < Duration::from_millis(1000), "waited for the other container: {took:?}");
        Ok(())
    })?;
    ensure!(pool.list().len() == 2, "{:?}", pool.list());
    Ok(())
}

fn pool_replaces_a_dead_session(fx: &Fixture) -> R {
    let pool = pool(fx);
    let first = {
        let mut sh = pool.get_or_create(&fx.container)?;
        let id = sh.id();
        assert_eq!(sh.exec("exit 3")?.exit_code, 3);
        id
    };
    // The dead session was not kept.
    ensure!(pool.list().iter().all(|i| i.id != first), "{:?}", pool.list());
    let mut sh = pool.get_or_create(&fx.container)?;
    ensure!(sh.id() != first, "the dead session was handed out again");
    assert_eq!(sh.exec("echo alive")?.stdout, b"alive\n");
    Ok(())
}

fn pool_reaps_idle_but_not_in_use(fx: &Fixture) -> R {
    let pool = Pool::builder(fx.factory()).idle_timeout(Duration::from_millis(300)).build();
    let (other, _cleanup) = second(fx);
    let t = tag();
    pool.get_or_create(&fx.container)?.exec(&format!("sleep {t} &"))?.check()?;
    let mut busy = pool.get_or_create(&other)?;
    busy.exec("true")?;
    std::thread::sleep(Duration::from_millis(600));
    // Idle and back in the pool: reaped. Idle but held by a caller: kept.
    assert_eq!(pool.reap_idle(), 1);
    let info = pool.list();
    ensure!(info.len() == 1 && info[0].container == other && info[0].in_use, "{info:?}");
    ensure!(fx.wait_gone(&format!("sleep {t}")).is_empty(), "reaping left the background job");
    assert_eq!(busy.exec("echo still")?.stdout, b"still\n");
    drop(busy);
    assert_eq!(pool.reap_idle(), 0, "just used");
    Ok(())
}

fn pool_background_reaper_stops_with_the_pool(fx: &Fixture) -> R {
    // Reaper threads are told apart by name only, process-wide: this test's runs on the other
    // runtimes wait, so that the thread looked for can only be this pool's.
    static ONE_REAPER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _alone = ONE_REAPER.lock().unwrap_or_else(|e| e.into_inner());
    let pool = Pool::builder(fx.factory())
        .idle_timeout(Duration::from_millis(200))
        .reap_every(Duration::from_millis(100))
        .build();
    pool.get_or_create(&fx.container)?.exec("true")?;
    let deadline = Instant::now() + fx.bound(10);
    while !pool.list().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    ensure!(pool.list().is_empty(), "the reaper did not close the idle session");
    let clone = pool.clone();
    drop(pool);
    drop(clone);
    let thread = || {
        std::fs::read_dir("/proc/self/task").map(|d| {
            d.filter_map(|e| std::fs::read(e.ok()?.path().join("comm")).ok()).any(|c| c.starts_with(b"boxshell-pool"))
        })
    };
    // The reaper may still be closing the session it took out of the list (a slow exec on
    // a loaded engine); it ends once that is done.
    let deadline = Instant::now() + fx.bound(15);
    while thread().unwrap_or(false) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    ensure!(!thread()?, "the reaper thread outlived its pool");
    Ok(())
}

fn pool_close_while_in_use_and_close_all(fx: &Fixture) -> R {
    let pool = pool(fx);
    let (other, _cleanup) = second(fx);
    let t = tag();
    let mut held = pool.get_or_create(&fx.container)?;
    held.exec(&format!("sleep {t} &"))?.check()?;
    let id = held.id();
    assert!(pool.close(&fx.container), "there was a session");
    // The caller holding it carries on; it is closed when handed back.
    assert_eq!(held.exec("echo still mine")?.stdout, b"still mine\n");
    drop(held);
    ensure!(fx.wait_gone(&format!("sleep {t}")).is_empty(), "the closed session left its job");
    let mut sh = pool.get_or_create(&fx.container)?;
    ensure!(sh.id() != id, "a closed session came back");
    sh.exec("true")?;
    drop(sh);
    pool.get_or_create(&other)?.exec("true")?;
    assert_eq!(pool.list().len(), 2);
    pool.close_all();
    assert!(pool.list().is_empty(), "{:?}", pool.list());
    assert!(!pool.close("never-opened"));
    Ok(())
}

fn pool_container_gone_is_an_error_then_a_new_session(fx: &Fixture) -> R {
    let pool = pool(fx);
    let name = unique("bx-pool-gone");
    run_container(&fx.engine, &name)?;
    let _cleanup = Cleanup(fx.engine.clone(), name.clone());
    let id = {
        let mut sh = pool.get_or_create(&name)?;
        sh.exec("true")?;
        sh.id()
    };
    engine(&fx.engine, &["rm", "-f", &name]);
    // The session died with its container; a new one cannot be opened until it is back. (Until
    // the exec client notices, the old session may still be handed out: its command fails.)
    let start = Instant::now();
    loop {
        match pool.get_or_create(&name) {
            Err(Error::ContainerNotFound { .. }) => break,
            Ok(mut sh) => {
                ensure!(sh.id() == id, "a new session for a container that is gone");
                let r = sh.exec("echo still here");
                ensure!(!matches!(&r, Ok(out) if out.success()), "a command ran in a removed container: {r:?}");
            }
            Err(e) => return Err(format!("expected ContainerNotFound, got {e:?}").into()),
        }
        ensure!(start.elapsed() < Duration::from_secs(30), "{:?}", start.elapsed());
    }
    run_container(&fx.engine, &name)?;
    let mut sh = pool.get_or_create(&name)?;
    ensure!(sh.id() != id, "same session");
    assert_eq!(sh.exec("echo back")?.stdout, b"back\n");
    Ok(())
}
