//! Prints a few facts about a fixed text; exists so the workspace links real registry crates.

use log::{info, LevelFilter, Log, Metadata, Record};

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }
    fn log(&self, record: &Record) {
        eprintln!("{}: {}", record.level(), record.args());
    }
    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

cfg_if::cfg_if! {
    if #[cfg(unix)] {
        fn process_id() -> u32 {
            // SAFETY: getpid has no preconditions.
            unsafe { libc::getpid() as u32 }
        }
    } else {
        fn process_id() -> u32 {
            std::process::id()
        }
    }
}

fn main() {
    log::set_logger(&LOGGER).expect("logger already set");
    log::set_max_level(LevelFilter::Info);

    let text = "one cache per job\none job per cache 2\n";
    let counts = util::word_counts(text);
    let mut buf = itoa::Buffer::new();
    info!("pid {}", buf.format(process_id()));
    println!(
        "words={} distinct={} newlines={} traits={:?} backend={}",
        text.split_whitespace().count(),
        counts.len(),
        util::line_starts(text).len(),
        util::traits(text),
        probe::backend()
    );
}
