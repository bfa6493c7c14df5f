//! `strata lag`: a version's replication lag, read from its running replicator.
//!
//! With `--follow` on a terminal: a view redrawn every interval with lag, bytes behind, row
//! changes per second, each target's apply rate and a sparkline of lag over the last
//! minute. When the output is not a terminal: one `key=value` line per interval, for `tail`,
//! pipes and logs. Exit code 1 when the replicator cannot be reached.

use crate::instance_file;
use crate::report::{self, VersionStatus};
use crate::status::{format_bytes, format_lag, format_seconds};
use clap::Args;
use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use strata_config::{Config, VersionConfig};

/// Show a version's replication lag: seconds behind the source, bytes behind, row changes
/// per second and each target's apply rate.
///
/// Lag is the time the oldest change not yet in every target has waited; it reads 0 only
/// when everything the server has written is applied. On a terminal, --follow redraws a
/// live view with a sparkline of the last minute; piped, it prints one line per interval.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  strata lag --config examples/jobfirst.toml --version future --follow
  strata lag --config prod.toml --version dao --follow --interval 5s >> lag.log

Exit codes: 0 done (or stopped with Ctrl-C); 1 the replicator cannot be reached (not
running, or not answering); 2 configuration error.")]
pub struct LagArgs {
    /// The TOML configuration file.
    #[arg(long, short, env = "STRATA_CONFIG", value_name = "FILE")]
    config: PathBuf,

    /// The version (a `[versions.NAME]` section of the config).
    #[arg(long, env = "STRATA_VERSION", value_name = "NAME")]
    version: String,

    /// Keep reading every interval (a live view on a terminal, one line per interval
    /// otherwise) until Ctrl-C.
    #[arg(long, short)]
    follow: bool,

    /// How often to read with --follow, e.g. `1s`, `500ms`, `5s`.
    #[arg(long, default_value = "1s", value_parser = parse_interval, value_name = "DURATION")]
    interval: Duration,
}

pub async fn run(args: LagArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config).map_err(|e| crate::exit::UsageError(e.to_string()))?;
    let version = config
        .version(&args.version)
        .map_err(|e| crate::exit::UsageError(e.to_string()))?;
    let Some(addr) = address(version) else {
        eprintln!(
            "error: version {} is not running: no running replicator is recorded in {} and its `http` address has port 0; start it with `strata run --config {} --version {}`",
            version.name,
            instance_file::path(version).display(),
            args.config.display(),
            version.name
        );
        return Ok(ExitCode::from(crate::exit::FAILURE));
    };
    let client = report::client()?;
    let live = args.follow && std::io::stdout().is_terminal();
    let mut view = View::default();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let status = match report::fetch(&client, addr).await {
            Ok(s) if s.version == version.name => s,
            Ok(s) => {
                eprintln!(
                    "error: http://{addr}/status answers for version {}, not {}",
                    s.version, version.name
                );
                return Ok(ExitCode::from(crate::exit::FAILURE));
            }
            Err(e) => {
                if live {
                    println!();
                }
                eprintln!(
                    "error: cannot reach the replicator of version {}: {e}",
                    version.name
                );
                return Ok(ExitCode::from(crate::exit::FAILURE));
            }
        };
        let sample = view.add(status);
        let mut out = std::io::stdout().lock();
        if live {
            // Home, clear the screen, draw: the whole view is rewritten each interval.
            write!(out, "\x1b[H\x1b[2J{}", view.screen(&sample))?;
        } else {
            writeln!(out, "{}", line(&sample))?;
        }
        out.flush()?;
        drop(out);
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            _ = &mut ctrl_c => {
                if live {
                    println!();
                }
                return Ok(ExitCode::SUCCESS);
            }
            _ = tokio::time::sleep(args.interval) => {}
        }
    }
}

/// Where the version's replicator answers: the address it recorded when it started, else
/// the configured one when its port is fixed.
fn address(version: &VersionConfig) -> Option<SocketAddr> {
    let recorded = instance_file::read(&instance_file::path(version))
        .ok()
        .flatten()
        .filter(|i| i.stopped_at_ms.is_none())
        .map(|i| i.http);
    recorded.or_else(|| (version.http.port() != 0).then_some(version.http))
}

/// `1s`, `500ms`, `2m`, or plain seconds.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 1s, 500ms or 2m"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; use ms, s or m"
            ))
        }
    };
    if !(0.05..=3600.0).contains(&seconds) {
        return Err(format!("`{text}` is out of range: use 50ms to 1h"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// One reading with the rates since the previous one.
struct Sample {
    status: VersionStatus,
    /// Row changes read per second (`None` on the first reading).
    rows_per_second: Option<f64>,
    /// Per target: writes handled per second.
    sink_rates: Vec<(String, Option<f64>)>,
}

/// The readings of the last minute, for rates and the sparkline.
#[derive(Default)]
struct View {
    previous: Option<(Instant, VersionStatus)>,
    history: VecDeque<(Instant, Option<f64>)>,
}

const HISTORY: Duration = Duration::from_secs(60);

impl View {
    fn add(&mut self, status: VersionStatus) -> Sample {
        let now = Instant::now();
        let rate = |now_count: u64, then_count: u64, elapsed: Duration| {
            let secs = elapsed.as_secs_f64();
            (secs > 0.0).then(|| now_count.saturating_sub(then_count) as f64 / secs)
        };
        let (rows_per_second, sink_rates) = match &self.previous {
            Some((then, prev)) => {
                let elapsed = now.duration_since(*then);
                let rows = rate(
                    status.source.total_row_changes(),
                    prev.source.total_row_changes(),
                    elapsed,
                );
                let sinks = status
                    .sinks
                    .iter()
                    .map(|s| {
                        let before = prev.sinks.iter().find(|p| p.name == s.name);
                        let count =
                            |x: &crate::report::SinkStatus| x.applied + x.stale + x.superseded;
                        let r = before.and_then(|b| rate(count(s), count(b), elapsed));
                        (s.name.clone(), r)
                    })
                    .collect();
                (rows, sinks)
            }
            None => (
                None,
                status
                    .sinks
                    .iter()
                    .map(|s| (s.name.clone(), None))
                    .collect(),
            ),
        };
        self.history.push_back((now, status.lag.seconds));
        while self
            .history
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > HISTORY)
        {
            self.history.pop_front();
        }
        self.previous = Some((now, status.clone()));
        Sample {
            status,
            rows_per_second,
            sink_rates,
        }
    }

    /// The live view's text.
    fn screen(&self, sample: &Sample) -> String {
        let s = &sample.status;
        let lag = &s.lag;
        let mut lag_text = format_lag(lag);
        if lag.caught_up {
            lag_text.push_str("  (caught up)");
        } else if lag.seconds.is_some() {
            lag_text.push_str(&format!(
                "  (measured from the {})",
                lag.basis.replace('_', " ")
            ));
        }
        let rates = if sample.sink_rates.is_empty() {
            "-".to_owned()
        } else {
            sample
                .sink_rates
                .iter()
                .map(|(name, r)| format!("{name} {}", per_second(*r)))
                .collect::<Vec<_>>()
                .join("   ")
        };
        let values: Vec<Option<f64>> = self.history.iter().map(|(_, v)| *v).collect();
        let peak = values.iter().flatten().fold(0.0_f64, |a, b| a.max(*b));
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let mut out = String::new();
        out.push_str(&format!(
            "strata lag · version {} · {} · {}\n\n",
            s.version,
            s.state.as_str(),
            utc(s.at_ms)
        ));
        let mut row = |label: &str, value: String| {
            out.push_str(&format!("  {label:<13}{value}\n"));
        };
        row("lag", lag_text);
        row("behind", lag.bytes.map_or_else(|| "?".into(), format_bytes));
        row("row changes", per_second(sample.rows_per_second));
        row("apply rate", rates);
        row(
            "last minute",
            format!("{}  (peak {})", sparkline(&values), format_seconds(peak)),
        );
        row(
            "applied",
            format!(
                "{}   server end {}",
                or_dash(&s.position.applied),
                or_dash(&s.position.server_end)
            ),
        );
        row(
            "checkpoint",
            s.checkpoint
                .as_ref()
                .map_or_else(|| "-".into(), |c| c.position.clone()),
        );
        row(
            "last error",
            s.last_error.clone().unwrap_or_else(|| "-".into()),
        );
        out.push_str("\n  Ctrl-C to quit\n");
        out
    }
}

/// The one-line form: `key=value` pairs, stable keys, for logs and pipes.
fn line(sample: &Sample) -> String {
    let s = &sample.status;
    let num = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.1}"));
    let mut text = format!(
        "time={} version={} state={} lag_seconds={} caught_up={} behind_bytes={} rows_per_second={}",
        utc(s.at_ms).replace(' ', "T"),
        s.version,
        s.state.as_str(),
        s.lag
            .seconds
            .map_or_else(|| "-".into(), |v| format!("{v:.3}")),
        s.lag.caught_up,
        s.lag.bytes.map_or_else(|| "-".into(), |b| b.to_string()),
        num(sample.rows_per_second),
    );
    for (name, rate) in &sample.sink_rates {
        text.push_str(&format!(" {name}_writes_per_second={}", num(*rate)));
    }
    text
}

fn per_second(rate: Option<f64>) -> String {
    rate.map_or_else(|| "…".into(), |r| format!("{r:.1}/s"))
}

/// A sparkline of `values`, scaled to their peak (at least one second, so idle reads flat);
/// unknown readings show as a space.
fn sparkline(values: &[Option<f64>]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let peak = values.iter().flatten().fold(1.0_f64, |a, b| a.max(*b));
    values
        .iter()
        .map(|v| match v {
            Some(v) => {
                let i = ((v / peak) * (BARS.len() - 1) as f64).round() as usize;
                BARS[i.min(BARS.len() - 1)]
            }
            None => ' ',
        })
        .collect()
}

/// `2026-11-22 04:05:20Z` from ms since the epoch.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3_600,
        (rem % 3_600) / 60,
        rem % 60
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse() {
        assert_eq!(parse_interval("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_interval("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_interval("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_interval("1h").is_err());
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("fast").is_err());
    }

    #[test]
    fn sparkline_scales_to_the_peak_and_idle_reads_flat() {
        assert_eq!(sparkline(&[Some(0.0), Some(0.0)]), "▁▁");
        assert_eq!(sparkline(&[Some(0.0), Some(5.0), Some(10.0), None]), "▁▅█ ");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(1_709_210_096_000), "2024-02-29 12:34:56Z");
    }
}
