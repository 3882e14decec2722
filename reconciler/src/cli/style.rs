//! The one styling layer: whether stdout and stderr get colour (`--color`, `NO_COLOR`,
//! `CLICOLOR_FORCE`, and whether the stream is a terminal), and the few tones tether paints
//! with. Everything the CLI colours asks [`current`]; nothing else writes escape codes except
//! the plan's text rendering, which is handed [`Style::enabled_for_stdout`].

use crate::apply::report::{ApplyReport, Outcome};
use std::io::IsTerminal;
use std::sync::OnceLock;

/// `--color`: when to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour a terminal, unless NO_COLOR is set (CLICOLOR_FORCE colours a pipe too).
    #[default]
    Auto,
    /// Always colour, whatever the stream and the environment.
    Always,
    /// Never colour.
    Never,
}

/// Whether one stream gets colour.
///
/// An explicit `--color always|never` wins; under `auto`, a non-empty `NO_COLOR` turns colour
/// off (no-color.org), then a `CLICOLOR_FORCE` other than empty or `0` turns it on, and
/// otherwise a terminal is coloured and a pipe or file is not.
pub fn decide(
    choice: ColorChoice,
    no_color: Option<&str>,
    clicolor_force: Option<&str>,
    is_terminal: bool,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if no_color.is_some_and(|v| !v.is_empty()) => false,
        ColorChoice::Auto if clicolor_force.is_some_and(|v| !v.is_empty() && v != "0") => true,
        ColorChoice::Auto => is_terminal,
    }
}

/// A colour role, mapped to modest ANSI styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Done, healthy (green).
    Good,
    /// Failed (red).
    Bad,
    /// Skipped, needs a look (yellow).
    Warn,
    /// Headings and summaries (bold).
    Strong,
    /// Secondary detail (dim).
    Faint,
}

impl Tone {
    fn code(self) -> &'static str {
        match self {
            Tone::Good => "\x1b[32m",
            Tone::Bad => "\x1b[31m",
            Tone::Warn => "\x1b[33m",
            Tone::Strong => "\x1b[1m",
            Tone::Faint => "\x1b[2m",
        }
    }
}

/// The decision for both streams, made once per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    stdout: bool,
    stderr: bool,
}

static STYLE: OnceLock<Style> = OnceLock::new();

/// Decides colour for this process from `choice` and the environment; later calls keep the
/// first decision.
pub fn init(choice: ColorChoice) -> Style {
    *STYLE.get_or_init(|| Style::from_env(choice))
}

/// The process's style ([`init`] by `main`; `auto` when nothing decided yet).
pub fn current() -> Style {
    init(ColorChoice::Auto)
}

impl Style {
    fn from_env(choice: ColorChoice) -> Style {
        let no_color = std::env::var("NO_COLOR").ok();
        let force = std::env::var("CLICOLOR_FORCE").ok();
        let stream = |tty: bool| decide(choice, no_color.as_deref(), force.as_deref(), tty);
        Style {
            stdout: stream(std::io::stdout().is_terminal()),
            stderr: stream(std::io::stderr().is_terminal()),
        }
    }

    /// Whether stdout gets colour.
    pub fn enabled_for_stdout(self) -> bool {
        self.stdout
    }

    /// Whether stderr gets colour (log lines included).
    pub fn enabled_for_stderr(self) -> bool {
        self.stderr
    }

    /// `text` in `tone` for stdout, or as is when stdout gets no colour.
    pub fn out(self, tone: Tone, text: &str) -> String {
        paint(self.stdout, tone, text)
    }

    /// `text` in `tone` for stderr, or as is when stderr gets no colour.
    pub fn err(self, tone: Tone, text: &str) -> String {
        paint(self.stderr, tone, text)
    }

    /// Apply's account for stdout: failed actions red, skipped and deferred yellow, the summary green when
    /// every action was done and red otherwise.
    pub fn report(self, report: &ApplyReport) -> String {
        let mut out = String::new();
        for a in &report.actions {
            let line = a.to_string();
            out.push_str(&match a.outcome {
                Outcome::Done => line,
                Outcome::Failed { .. } => self.out(Tone::Bad, &line),
                Outcome::Skipped { .. } | Outcome::Deferred { .. } => self.out(Tone::Warn, &line),
            });
            out.push('\n');
        }
        let summary = report.totals();
        let tone = if report.succeeded() {
            Tone::Good
        } else {
            Tone::Bad
        };
        out.push_str(&self.out(tone, &summary));
        out
    }
}

fn paint(enabled: bool, tone: Tone, text: &str) -> String {
    if enabled {
        format!("{}{text}\x1b[0m", tone.code())
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_beats_a_terminal_and_clicolor_force_but_not_an_explicit_flag() {
        use ColorChoice::{Always, Auto, Never};
        let cases = [
            (Auto, None, None, true, true),
            (Auto, None, None, false, false),
            (Auto, Some("1"), None, true, false),
            (Auto, Some(""), None, true, true),
            (Auto, Some("1"), Some("1"), true, false),
            (Auto, None, Some("1"), false, true),
            (Auto, None, Some("0"), false, false),
            (Always, Some("1"), None, false, true),
            (Never, None, Some("1"), true, false),
        ];
        for (choice, no_color, force, tty, expected) in cases {
            assert_eq!(
                decide(choice, no_color, force, tty),
                expected,
                "{choice:?} NO_COLOR={no_color:?} CLICOLOR_FORCE={force:?} tty={tty}"
            );
        }
    }

    #[test]
    fn painting_is_a_no_op_without_colour() {
        let plain = Style {
            stdout: false,
            stderr: true,
        };
        assert_eq!(plain.out(Tone::Bad, "FAILED"), "FAILED");
        assert_eq!(plain.err(Tone::Bad, "FAILED"), "\x1b[31mFAILED\x1b[0m");
    }
}
