//! `report.html` opened in a real browser: headless Chromium renders the handmade two-pattern
//! sweep (with thresholds and a comparison), and the test checks what a reader would see:
//!
//! - `--dump-dom`: the four plots are inline `<svg>` elements with a line per series, and the
//!   page loads nothing from the network (no `src=`/`href=` to another resource, no script);
//! - `--screenshot`: the four plot areas are found by their background colour in a 2 × 2 grid,
//!   and each holds pixels of both series colours (push blue, Kafka orange), so the lines were
//!   actually drawn, not just present in the markup.
//!
//! Chromium comes from `scripts/setup-browser.sh` (Debian package `chromium`). When it is
//! missing the test FAILS if the `CI` environment variable is set, and otherwise prints a
//! `SKIPPED: ...` notice to stderr and passes. The page and screenshot stay in
//! `target/tmp/load-html-browser/` for a look.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reports::load::{compare, evaluate_with, parse_report, write_all, ReportOptions, Threshold};

const SWEEP: &str = include_str!("fixtures/two-pattern-sweep.json");
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 3400;
/// Upper bound for one Chromium run; it normally takes a second or two.
const DEADLINE: Duration = Duration::from_secs(90);

/// The plot background (`svg .plot` fill in the page's CSS).
const PLOT_BG: [u8; 3] = [0xfb, 0xfc, 0xfd];
/// `#1f6fd1`, push's series colour.
const PUSH: [u8; 3] = [0x1f, 0x6f, 0xd1];
/// `#e8730c`, Kafka's series colour.
const KAFKA: [u8; 3] = [0xe8, 0x73, 0x0c];

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {b}"))
                .output()
                .ok()?;
            let path = String::from_utf8(out.stdout).ok()?;
            let path = path.trim();
            (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
}

/// Runs Chromium headless with no network, no first-run work and a throwaway profile.
fn run_chromium(browser: &Path, profile: &Path, extra: &[String], page: &Path) -> Vec<u8> {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read stdout while Chromium runs: a DOM larger than the pipe buffer would block it.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).map(|_| out)
    });
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {extra:?} exited with {status}");
            return reader.join().unwrap().unwrap();
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("chromium {extra:?} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn near(px: &[u8], c: [u8; 3], tol: i16) -> bool {
    px.iter()
        .zip(c)
        .all(|(a, b)| (i16::from(*a) - i16::from(b)).abs() <= tol)
}

/// Bands of consecutive rows (gaps up to 4 rows bridged, for horizontal grid lines) where at
/// least `min` pixels of `x0..x1` have the plot background colour.
fn plot_bands(img: &Image, x0: u32, x1: u32, min: usize) -> Vec<(u32, u32)> {
    let mut bands: Vec<(u32, u32)> = Vec::new();
    for y in 0..img.height {
        let n = (x0..x1).filter(|&x| img.px(x, y) == PLOT_BG).count();
        if n >= min {
            match bands.last_mut() {
                Some(b) if y - b.1 <= 5 => b.1 = y,
                _ => bands.push((y, y)),
            }
        }
    }
    bands.retain(|b| b.1 - b.0 >= 120);
    bands
}

struct Image {
    width: u32,
    height: u32,
    channels: usize,
    data: Vec<u8>,
}

impl Image {
    fn px(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * self.channels;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    fn count(&self, xs: (u32, u32), ys: (u32, u32), c: [u8; 3]) -> usize {
        let mut n = 0;
        for y in ys.0..=ys.1 {
            for x in xs.0..xs.1 {
                if near(&self.px(x, y), c, 24) {
                    n += 1;
                }
            }
        }
        n
    }
}

fn decode(path: &Path) -> Image {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut data = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut data).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    Image {
        width: info.width,
        height: info.height,
        channels,
        data,
    }
}

#[test]
fn report_html_draws_the_four_plots_in_chromium() {
    let Some(browser) = chromium() else {
        let msg = "chromium not found; run scripts/setup-browser.sh";
        if std::env::var_os("CI").is_some() {
            panic!("{msg} (required when CI is set)");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("load-html-browser");
    let _ = std::fs::remove_dir_all(&dir);
    let report = parse_report(SWEEP).unwrap();
    let mut baseline = report.clone();
    baseline.started_at = "2026-01-14T10:00:00Z".into();
    baseline.points[1].latency_ms.p99 = 80.0;
    let thresholds: Vec<Threshold> = ["push.freshness.p99<500ms", "kafka.achieved_ratio>=99%"]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    let opts = ReportOptions {
        thresholds: evaluate_with(&report, &thresholds, Some(&baseline)),
        comparison: Some(compare(&baseline, &report)),
        ..ReportOptions::default()
    };
    write_all(&dir, &report, &opts).unwrap();
    let page = dir.join("report.html");
    let profile = tempfile::tempdir().unwrap();

    let dom = String::from_utf8(run_chromium(
        &browser,
        profile.path(),
        &["--dump-dom".to_owned()],
        &page,
    ))
    .unwrap();
    for id in [
        "plot-achieved",
        "plot-latency",
        "plot-freshness",
        "plot-errors",
    ] {
        let at = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} missing"));
        let svg = &dom[at..];
        let svg = &svg[..svg.find("</svg>").unwrap()];
        assert!(svg.contains("<svg"), "{id} has no inline svg");
        assert!(
            svg.matches("<polyline class=\"series\"").count() >= 2,
            "{id} draws fewer than two series"
        );
    }
    assert!(!dom.contains("<script"), "the page needs no script");
    assert!(!dom.contains(" src="), "the page loads no resource");
    assert!(!dom.contains("<link"), "the page loads no stylesheet");

    let shot = dir.join("screenshot.png");
    run_chromium(
        &browser,
        profile.path(),
        &[
            format!("--screenshot={}", shot.display()),
            format!("--window-size={WIDTH},{HEIGHT}"),
        ],
        &page,
    );
    let img = decode(&shot);
    assert_eq!((img.width, img.height), (WIDTH, HEIGHT));
    let half = WIDTH / 2;
    for (side, x0, x1) in [("left", 0, half), ("right", half, WIDTH)] {
        let bands = plot_bands(&img, x0, x1, 200);
        assert_eq!(
            bands.len(),
            2,
            "expected two plot areas in the {side} column, found {bands:?} (see {})",
            shot.display()
        );
        for band in bands {
            let band = (band.0.saturating_sub(6), (band.1 + 6).min(HEIGHT - 1));
            let push = img.count((x0, x1), band, PUSH);
            let kafka = img.count((x0, x1), band, KAFKA);
            assert!(
                push > 150 && kafka > 150,
                "plot at {side} rows {band:?} is missing lines: {push} push and {kafka} kafka \
                 pixels (see {})",
                shot.display()
            );
        }
    }
    eprintln!("screenshot: {}", shot.display());
}
