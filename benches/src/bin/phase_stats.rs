//! Reads the output of `benches/load_p99.sh` (a file, or stdin) and compares the normal
//! requests' p99 in odd phases (10% of the traffic in diagnostic mode) with even ones,
//! for the A/A control runs and for the real ones:
//!
//! - `before`: each odd phase's p99 over the even phase's just before it;
//! - `around`: over the geometric mean of the even phases on both sides, which cancels
//!   a drift over the run;
//!
//! each as the median over every pair of every round, with the 95% interval between the
//! order statistics n/2 ± 0.98·√n (a sign test's: no assumption on how the ratios are
//! distributed). Then what the issue's target asks, debug traffic against none: the
//! real runs' median over the controls' median, with a 95% interval from resampling
//! whole rounds (each round's control and real run together; 4,000 resamples, fixed
//! seed, so the same file always gives the same numbers).
//!
//! ```text
//! cargo run --release -p diag-benches --bin phase_stats -- saved-load_p99-output.txt
//! ```

use std::io::Read;

type BoxError = Box<dyn std::error::Error>;

/// One run's `(even p99, odd p99)` pairs, in phase order.
type Run = Vec<(f64, f64)>;

fn main() -> Result<(), BoxError> {
    let mut text = String::new();
    match std::env::args().nth(1) {
        Some(path) => text = std::fs::read_to_string(path)?,
        None => {
            std::io::stdin().read_to_string(&mut text)?;
        }
    }
    let rounds = parse(&text)?;
    if rounds.is_empty() {
        return Err("no complete round (a control run and a real one) in the input".into());
    }
    println!("{} rounds", rounds.len());
    for (name, ratios) in [
        ("before", before as fn(&Run) -> Vec<f64>),
        ("around", around),
    ] {
        // Each round's ratios, computed once: the resampling below reuses them.
        let per_round: Vec<(Vec<f64>, Vec<f64>)> =
            rounds.iter().map(|(c, d)| (ratios(c), ratios(d))).collect();
        let control: Vec<f64> = per_round.iter().flat_map(|(c, _)| c).copied().collect();
        let debug: Vec<f64> = per_round.iter().flat_map(|(_, d)| d).copied().collect();
        println!("{name}: control {}", summary(sorted(control)));
        println!("{name}: X-Debug {}", summary(sorted(debug)));
        let (ratio, lo, hi) = bootstrap(&per_round);
        println!(
            "{name}: X-Debug / control {ratio:.3}, 95% interval {lo:.3}-{hi:.3} (rounds resampled)"
        );
    }
    Ok(())
}

/// `(control, real)` runs, round by round, from the script's output.
fn parse(text: &str) -> Result<Vec<(Run, Run)>, BoxError> {
    let mut rounds = Vec::new();
    let mut control: Option<Run> = None;
    let mut kind = "";
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("round ") {
            kind = if line.ends_with("control:") {
                "control"
            } else {
                "debug"
            };
        } else if let Some(pairs) = line.strip_prefix("phase pairs, p99 µs even:odd:") {
            let run = pairs
                .split_whitespace()
                .map(|p| {
                    let (even, odd) = p.split_once(':').ok_or("a pair without ':'")?;
                    Ok((even.parse()?, odd.parse()?))
                })
                .collect::<Result<Run, BoxError>>()?;
            match kind {
                "control" => control = Some(run),
                _ => {
                    if let Some(c) = control.take() {
                        rounds.push((c, run));
                    }
                }
            }
        }
    }
    Ok(rounds)
}

fn before(run: &Run) -> Vec<f64> {
    run.iter()
        .filter(|(even, _)| *even > 0.0)
        .map(|(even, odd)| odd / even)
        .collect()
}

fn around(run: &Run) -> Vec<f64> {
    run.windows(2)
        .filter(|w| w[0].0 > 0.0 && w[1].0 > 0.0)
        .map(|w| w[0].1 / (w[0].0 * w[1].0).sqrt())
        .collect()
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// The median of `sorted` (NaN when empty).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn summary(v: Vec<f64>) -> String {
    let n = v.len();
    if n == 0 {
        return "no pairs".into();
    }
    let half = 0.98 * (n as f64).sqrt();
    let lo = ((n as f64 / 2.0 - half).floor() as usize).clamp(1, n);
    let hi = ((n as f64 / 2.0 + half + 1.0).floor() as usize).clamp(1, n);
    let above = v.iter().filter(|r| **r > 1.0).count();
    format!(
        "{n} pairs, p99 odd / even median {:.3}, 95% interval {:.3}-{:.3}, odd higher in {above}",
        median(&v),
        v[lo - 1],
        v[hi - 1]
    )
}

/// From each round's `(control, real)` ratios: the real runs' median ratio over the
/// controls', and its 2.5% and 97.5% quantiles over resamples of whole rounds.
fn bootstrap(rounds: &[(Vec<f64>, Vec<f64>)]) -> (f64, f64, f64) {
    let of = |picked: &mut dyn Iterator<Item = &(Vec<f64>, Vec<f64>)>| {
        let (mut c, mut d) = (Vec::new(), Vec::new());
        for (control, debug) in picked {
            c.extend_from_slice(control);
            d.extend_from_slice(debug);
        }
        median(&sorted(d)) / median(&sorted(c))
    };
    let point = of(&mut rounds.iter());
    // xorshift64*, fixed seed: reproducible without a dependency.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |n: usize| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    };
    let mut stats: Vec<f64> = (0..4000)
        .map(|_| {
            let picks: Vec<usize> = (0..rounds.len()).map(|_| next(rounds.len())).collect();
            of(&mut picks.iter().map(|&i| &rounds[i]))
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    (point, stats[100], stats[3899])
}
