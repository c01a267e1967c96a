//! The file system verbs of a session, named as `std::fs`: hostile names, errors a caller can
//! match, parent directories made by `write_file`, a listing of 10,000 entries in one command,
//! and nothing of the user's (aliases, functions, `set -euf`, bash's glob options) in the way.
//! Every test runs with every shell of the fixture.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use boxshell::fs::FileKind;
use boxshell::{Error, Session};

use crate::ensure;
use crate::harness::{Fixture, unique};
use crate::{R, Test};

pub const TESTS: &[(&str, Test<Fixture>)] = &[
    ("every_verb_on_hostile_names", every_verb_on_hostile_names),
    ("write_file_makes_missing_parents", write_file_makes_missing_parents),
    ("failures_say_why_as_std_io_does", failures_say_why_as_std_io_does),
    ("read_dir_of_10000_entries_is_one_command", read_dir_of_10000_entries_is_one_command),
    ("the_users_aliases_functions_and_options_change_nothing", the_users_aliases_functions_and_options_change_nothing),
    ("root_and_symbolic_links_as_std_fs_says", root_and_symbolic_links_as_std_fs_says),
];

/// Tests that need a user other than root in the container.
pub const ENGINE_TESTS: &[(&str, Test<Fixture>)] =
    &[("permission_denied_is_said_as_such", permission_denied_is_said_as_such)];

/// The names every verb is tried with.
const NAMES: [&[u8]; 6] =
    [b"plain", b"with space", b"new\nline", b"-leading-dash", "ünï\u{1f600}".as_bytes(), b"\xff\xfe"];

/// A session per shell of the fixture, with a fresh directory for the test, removed after.
fn each_shell(fx: &Fixture, mut test: impl FnMut(&mut Session, &str, &str) -> R) -> R {
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).open()?;
        let dir = format!("/tmp/{}", unique("bx-fs"));
        sh.create_dir_all(&dir)?;
        test(&mut sh, &shell, &dir)?;
        sh.remove_dir_all(&dir)?;
        ensure!(!sh.exists(&dir)?, "{shell}: {dir} is still there");
        sh.close()?;
    }
    Ok(())
}

fn path(dir: &str, name: &[u8]) -> std::path::PathBuf {
    OsStr::from_bytes(&[dir.as_bytes(), b"/", name].concat()).into()
}

fn every_verb_on_hostile_names(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell, dir| {
        for name in NAMES {
            let shown = String::from_utf8_lossy(name);
            let (file, sub) = (path(dir, name), path(dir, &[b"d-", name].concat()));
            let data = [name, b"\n\0content"].concat();
            ensure!(!sh.exists(&file)?, "{shell}: {shown:?} before");
            sh.write_file(&file, &data)?;
            ensure!(sh.exists(&file)? && sh.read_file(&file)? == data, "{shell}: {shown:?} round trip");
            let m = sh.metadata(&file)?;
            ensure!(m.is_file() && m.len == data.len() as u64, "{shell}: {shown:?}: {m:?}");
            sh.create_dir_all(sub.join("a/b"))?;
            ensure!(sh.metadata(&sub)?.is_dir(), "{shell}: {shown:?} dir");
            let moved = path(dir, &[b"m-", name].concat());
            sh.rename(&file, &moved)?;
            ensure!(!sh.exists(&file)? && sh.read_file(&moved)? == data, "{shell}: {shown:?} rename");
            sh.rename(&moved, &file)?;
        }
        // The listing holds every name, byte for byte, with what it is.
        let mut listed: Vec<(Vec<u8>, FileKind, u64)> =
            sh.read_dir(dir)?.into_iter().map(|e| (e.name.as_bytes().to_vec(), e.kind, e.len)).collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want: Vec<(Vec<u8>, FileKind, u64)> = NAMES
            .iter()
            .flat_map(|n| [(n.to_vec(), FileKind::File, n.len() as u64 + 9), ([b"d-", *n].concat(), FileKind::Dir, 0)])
            .collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        let listed_kinds: Vec<_> = listed.iter().map(|(n, k, _)| (n.clone(), *k)).collect();
        let want_kinds: Vec<_> = want.iter().map(|(n, k, _)| (n.clone(), *k)).collect();
        ensure!(listed_kinds == want_kinds, "{shell}: listing {listed_kinds:?}");
        for ((name, kind, len), (_, _, want_len)) in listed.iter().zip(&want) {
            ensure!(*kind == FileKind::Dir || len == want_len, "{shell}: {name:?} is {len} bytes");
        }
        for name in NAMES {
            sh.remove_file(path(dir, name))?;
            sh.remove_dir_all(path(dir, &[b"d-", name].concat()))?;
        }
        ensure!(sh.read_dir(dir)?.is_empty(), "{shell}: left after removing: {:?}", sh.read_dir(dir)?);
        // A symbolic link: read_dir and symlink_metadata say so, metadata follows it.
        sh.exec(&format!("ln -s /etc '{dir}/link' && mkdir '{dir}/.hidden'"))?.check()?;
        let kinds: Vec<_> = sh.read_dir(dir)?.into_iter().map(|e| (e.name, e.kind)).collect();
        ensure!(kinds == [(".hidden".into(), FileKind::Dir), ("link".into(), FileKind::Symlink)], "{shell}: {kinds:?}");
        let link = format!("{dir}/link");
        ensure!(sh.symlink_metadata(&link)?.is_symlink() && sh.metadata(&link)?.is_dir(), "{shell}: link");
        sh.remove_dir_all(&link)?;
        ensure!(sh.exists("/etc/passwd")?, "{shell}: remove_dir_all followed the link");
        Ok(())
    })
}

/// SWE-ReX's and OpenHands' cases: a file written where its directory does not exist yet.
fn write_file_makes_missing_parents(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell, dir| {
        for (len, sub) in [(10, "a/b/c"), (100_000, "x y/\u{e9}/z")] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let file = format!("{dir}/{sub}/plan.md");
            sh.write_file(&file, &data)?;
            ensure!(sh.read_file(&file)? == data, "{shell}: {len} bytes into {sub}");
        }
        // Relative to the session's cwd.
        sh.exec(&format!("cd '{dir}'"))?.check()?;
        sh.write_file("rel/dir/f", b"r")?;
        ensure!(sh.read_file(format!("{dir}/rel/dir/f"))? == b"r", "{shell}: relative");
        sh.exec("cd /")?.check()?;
        Ok(())
    })
}

fn expect_fs<T: std::fmt::Debug>(what: &str, got: boxshell::Result<T>, op: &str, want: ErrorKind, path: &str) -> R {
    match got {
        Err(e @ Error::Fs { .. }) => {
            let Error::Fs { op: got_op, path: got_path, kind, .. } = &e else { unreachable!() };
            ensure!((*got_op, got_path.as_str(), *kind) == (op, path, want), "{what}: {e:?}");
            ensure!(e.to_string().contains(path), "{what}: {e}");
            Ok(())
        }
        other => Err(format!("{what}: expected Error::Fs {want:?}, got {other:?}").into()),
    }
}

fn failures_say_why_as_std_io_does(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell, dir| {
        let (missing, file, full) = (format!("{dir}/missing"), format!("{dir}/file"), format!("{dir}/full"));
        sh.write_file(&file, b"x")?;
        sh.write_file(format!("{full}/inside"), b"x")?;
        sh.create_dir_all(format!("{dir}/empty"))?;
        use ErrorKind::*;
        expect_fs(shell, sh.metadata(&missing), "metadata", NotFound, &missing)?;
        expect_fs(shell, sh.symlink_metadata(&missing), "symlink_metadata", NotFound, &missing)?;
        expect_fs(shell, sh.read_dir(&missing), "read_dir", NotFound, &missing)?;
        expect_fs(shell, sh.read_dir(&file), "read_dir", NotADirectory, &file)?;
        expect_fs(shell, sh.read_file(&missing), "read_file", NotFound, &missing)?;
        expect_fs(shell, sh.read_file(dir), "read_file", IsADirectory, dir)?;
        expect_fs(shell, sh.remove_file(&missing), "remove_file", NotFound, &missing)?;
        expect_fs(shell, sh.remove_file(&full), "remove_file", IsADirectory, &full)?;
        expect_fs(shell, sh.remove_dir_all(&missing), "remove_dir_all", NotFound, &missing)?;
        expect_fs(shell, sh.remove_dir_all(&file), "remove_dir_all", NotADirectory, &file)?;
        expect_fs(shell, sh.create_dir_all(&file), "create_dir_all", AlreadyExists, &file)?;
        let under_file = format!("{file}/sub");
        expect_fs(shell, sh.create_dir_all(&under_file), "create_dir_all", NotADirectory, &under_file)?;
        expect_fs(shell, sh.rename(&missing, &file), "rename", NotFound, &missing)?;
        let empty = format!("{dir}/empty");
        expect_fs(shell, sh.rename(&empty, &full), "rename", DirectoryNotEmpty, &empty)?;
        expect_fs(shell, sh.rename(&file, &empty), "rename", IsADirectory, &file)?;
        expect_fs(shell, sh.write_file(dir, b"x"), "write_file", IsADirectory, dir)?;
        // Nothing was changed by the failures, and rename's replacements are rename(2)'s.
        ensure!(sh.read_file(&file)? == b"x" && sh.metadata(&full)?.is_dir(), "{shell}: changed");
        sh.rename(&full, &empty)?;
        ensure!(sh.read_file(format!("{empty}/inside"))? == b"x", "{shell}: a dir onto an empty one");
        expect_fs(shell, sh.exists(&under_file), "exists", NotADirectory, &under_file)?;
        // Under the session's `set -x` too: nothing of the verb is traced, and it stays on.
        sh.exec("set -x")?;
        expect_fs(shell, sh.rename(&missing, &file), "rename", NotFound, &missing)?;
        let still = sh.exec("case $- in *x*) echo on ;; esac")?;
        sh.exec("set +x")?;
        ensure!(still.stdout == b"on\n", "{shell}: xtrace after a verb: {still:?}");
        let bad = sh.exists("");
        ensure!(matches!(bad, Err(Error::InvalidValue { .. })), "{shell}: empty path: {bad:?}");
        let nul = sh.read_file("a\0b");
        ensure!(matches!(nul, Err(Error::InvalidValue { .. })), "{shell}: NUL: {nul:?}");
        Ok(())
    })
}

fn read_dir_of_10000_entries_is_one_command(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell, dir| {
        // Making the files is not what is tested: 1.5 s on an idle engine, it is given plenty.
        sh.cmd(format!("cd '{dir}' && i=0; while [ $i -lt 10000 ]; do : > \"f $i\"; i=$((i+1)); done; cd /"))
            .timeout(Duration::from_secs(180))
            .run()?
            .check()?;
        let before = sh.metrics().commands;
        let entries = sh.read_dir(dir)?;
        ensure!(sh.metrics().commands == before + 1, "{shell}: {} commands", sh.metrics().commands - before);
        ensure!(entries.len() == 10_000, "{shell}: {} entries", entries.len());
        let mut names: Vec<String> = entries.iter().map(|e| e.name.to_string_lossy().into_owned()).collect();
        names.sort();
        names.dedup();
        ensure!(names.len() == 10_000 && names.iter().all(|n| n.starts_with("f ")), "{shell}: names");
        ensure!(entries.iter().all(|e| e.kind == FileKind::File && e.len == 0), "{shell}: kinds");
        Ok(())
    })
}

fn the_users_aliases_functions_and_options_change_nothing(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell, dir| {
        sh.exec("alias rm='echo no' mkdir='echo no' cat='cat -n'; stat() { echo no; }; mv() { echo no; }; cd() { echo no; }")?
            .check()?;
        if shell.contains("bash") {
            sh.exec("shopt -s failglob dotglob nullglob")?.check()?;
        }
        sh.exec("set -euf; export LANG=de_DE.UTF-8")?;
        sh.write_file(format!("{dir}/new/f"), b"one\n")?;
        ensure!(sh.read_file(format!("{dir}/new/f"))? == b"one\n", "{shell}: read");
        let names: Vec<_> = sh.read_dir(format!("{dir}/new"))?.into_iter().map(|e| e.name).collect();
        ensure!(names == ["f"], "{shell}: {names:?}");
        ensure!(sh.metadata(format!("{dir}/new/f"))?.len == 4, "{shell}: stat");
        sh.rename(format!("{dir}/new/f"), format!("{dir}/new/g"))?;
        sh.remove_file(format!("{dir}/new/g"))?;
        sh.remove_dir_all(format!("{dir}/new"))?;
        ensure!(!sh.exists(format!("{dir}/new"))?, "{shell}: removed");
        sh.exec("set +euf; unalias -a; unset -f stat mv cd")?;
        Ok(())
    })
}

/// Sessions here run as root, whom the kernel lets into any directory (busybox's `[ -x ]` says
/// otherwise); a dangling link is not there, a loop of links is an error (as `std::fs::exists`).
fn root_and_symbolic_links_as_std_fs_says(fx: &Fixture) -> R {
    each_shell(fx, |sh, shell, dir| {
        sh.exec(&format!(
            "mkdir '{dir}/locked' && echo x > '{dir}/locked/f' && chmod 000 '{dir}/locked' \
             && ln -s loop '{dir}/loop' && ln -s nowhere '{dir}/dangling'"
        ))?
        .check()?;
        let locked = format!("{dir}/locked");
        let names: Vec<_> = sh.read_dir(&locked)?.into_iter().map(|e| e.name).collect();
        ensure!(names == ["f"], "{shell}: read_dir of mode 000: {names:?}");
        ensure!(sh.exists(format!("{locked}/f"))?, "{shell}: exists under mode 000");
        ensure!(sh.read_file(format!("{locked}/f"))? == b"x\n", "{shell}: read_file under mode 000");
        ensure!(sh.metadata(&locked)?.is_dir(), "{shell}: metadata of mode 000");
        ensure!(!sh.exists(format!("{dir}/dangling"))?, "{shell}: a dangling link");
        let looped = sh.exists(format!("{dir}/loop"));
        ensure!(matches!(&looped, Err(Error::Fs { op: "exists", .. })), "{shell}: a loop of links: {looped:?}");
        sh.exec(&format!("chmod 755 '{locked}'"))?.check()?;
        Ok(())
    })
}

fn permission_denied_is_said_as_such(fx: &Fixture) -> R {
    let mut root = fx.session();
    let dir = format!("/tmp/{}", unique("bx-fs-private"));
    root.write_file(format!("{dir}/f"), b"secret")?;
    root.exec(&format!("chmod 700 '{dir}'"))?.check()?;
    for shell in fx.shells() {
        let mut sh = fx.builder().shell(&shell).user("65534").open()?;
        use ErrorKind::PermissionDenied;
        let f = format!("{dir}/f");
        expect_fs(&shell, sh.read_file(&f), "read_file", PermissionDenied, &f)?;
        expect_fs(&shell, sh.metadata(&f), "metadata", PermissionDenied, &f)?;
        expect_fs(&shell, sh.read_dir(&dir), "read_dir", PermissionDenied, &dir)?;
        let g = format!("{dir}/g");
        expect_fs(&shell, sh.write_file(&g, b"x"), "write_file", PermissionDenied, &g)?;
        let sub = format!("{dir}/sub/deeper");
        expect_fs(&shell, sh.create_dir_all(&sub), "create_dir_all", PermissionDenied, &sub)?;
        // Under it too, as by cd, whether or not the path is there.
        for workdir in [dir.clone(), format!("{dir}/sub"), format!("{dir}/f/sub")] {
            expect_fs(&shell, sh.cmd("true").workdir(&workdir).run(), "workdir", PermissionDenied, &workdir)?;
        }
        // As std::fs::exists: what cannot be told is an error, not `false`.
        expect_fs(&shell, sh.exists(&f), "exists", PermissionDenied, &f)?;
        ensure!(!sh.exists(format!("{dir}-missing/f"))?, "{shell}: a missing path");
        sh.close()?;
    }
    root.remove_dir_all(&dir)?;
    Ok(())
}
