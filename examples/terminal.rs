//! Full-screen programs on a terminal, printed as the screen a person would see:
//! `cargo run --example terminal` runs them in a shell on this host; with
//! `BOXSHELL_RUNTIME=docker BOXSHELL_CONTAINER=web`, in that container. The programs are
//! busybox's (`vi`, `top`), as in the test image; the screens are drawn by the `vt100` crate.

use std::time::Duration;

use boxshell::{Runtime, Session, Stream};

const WAIT: Duration = Duration::from_secs(10);

fn main() -> boxshell::Result<()> {
    let container = std::env::var("BOXSHELL_CONTAINER").ok();
    let runtime = if container.is_some() { Runtime::detect()? } else { Runtime::Local };
    let target = container.unwrap_or_else(|| "-".into());
    let mut sh = Session::builder(&target).runtime(runtime.clone()).open()?;
    println!("== {runtime} {target}");
    sh.exec("cd /tmp && greet() { echo \"hello, $1\"; }")?.check()?;

    // A prompt that shows only on a terminal; the answer stays in the session.
    let mut r = sh.cmd("greet terminal; printf 'Name? '; read -r name").terminal(80, 24).spawn()?;
    r.expect(Stream::Stdout, b"Name? ", WAIT)?;
    r.write_stdin(b"ann\r")?;
    r.wait()?.check()?;
    print!("the session kept the answer: {}", sh.exec("echo \"$name\"")?.stdout_str());

    // vi, driven by keystrokes; the file it saved, read back.
    let path = format!("/tmp/boxshell-terminal-{}.txt", std::process::id());
    let mut vi = sh.cmd(format!("busybox vi {path}")).terminal(60, 8).spawn()?;
    let mut drawn = vi.expect(Stream::Stdout, b"~", WAIT)?;
    vi.write_stdin(b"iHello from a terminal.\x1b")?;
    drawn.extend(vi.expect(Stream::Stdout, b"terminal.", WAIT)?);
    // vi takes Escape and what follows at once for one key: a person's pause.
    std::thread::sleep(Duration::from_millis(300));
    vi.write_stdin(b":wq\r")?;
    vi.wait()?.check()?;
    println!("vi, as it looked before :wq");
    print_screen(&drawn, 60, 8);
    print!("the file vi saved: {}", String::from_utf8_lossy(&sh.read_file(&path)?));
    sh.remove_file(&path)?;

    // top, resized while it runs, then quit with `q`.
    let mut top = sh.cmd("busybox top").terminal(70, 10).spawn()?;
    let mut screen = top.expect(Stream::Stdout, b"COMMAND", WAIT)?;
    top.resize(90, 12)?;
    // Redrawn at the new size: its header, then the first rows.
    screen.extend(top.expect(Stream::Stdout, b"COMMAND", WAIT)?);
    for _ in 0..4 {
        screen.extend(top.expect(Stream::Stdout, b"\r\n", WAIT)?);
    }
    top.write_stdin(b"q")?;
    top.wait()?.check()?;
    println!("top, after a resize to 90x12");
    print_screen(&screen, 90, 12);
    Ok(())
}

/// Prints what a person sees on a `cols` by `rows` terminal after `bytes`, framed.
fn print_screen(bytes: &[u8], cols: u16, rows: u16) {
    let mut parser = vt100::Parser::new(rows, cols, 0);
    parser.process(bytes);
    let line = "-".repeat(usize::from(cols));
    println!("+{line}+");
    for row in parser.screen().rows(0, cols) {
        println!("|{row:<width$}|", width = usize::from(cols));
    }
    println!("+{line}+");
}
