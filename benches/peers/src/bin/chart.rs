//! Draws `results.json` (written by `compare`) as an SVG bar chart: one
//! group per workload, each bar relative to the best library of its group
//! (so that msg/s, GB/s and bytes share one chart), labelled with the figure.
//!
//! ```text
//! cargo run --release --manifest-path benches/peers/Cargo.toml --bin chart -- [--in PATH] [--out PATH]
//! ```

use std::fmt::Write as _;

use serde_json::Value;
use wsmachine_peers::format_value;

const WIDTH: f64 = 980.0;
const LABEL_X: f64 = 24.0;
const BAR_X: f64 = 330.0;
const BAR_MAX: f64 = 500.0;
const BAR_H: f64 = 15.0;
const BAR_GAP: f64 = 4.0;
const GROUP_GAP: f64 = 20.0;
const TOP: f64 = 128.0;
const COLORS: [&str; 6] = [
    "#e8590c", "#1c7ed6", "#2f9e44", "#7048e8", "#c2255c", "#495057",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn field<'a>(value: &'a Value, key: &str) -> &'a Value {
    value
        .get(key)
        .unwrap_or_else(|| panic!("results file: no \"{key}\""))
}

fn text_of(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "?".into(),
    }
}

fn chart(results: &Value) -> String {
    let libraries: Vec<String> = field(results, "libraries")
        .as_array()
        .expect("libraries: an array")
        .iter()
        .map(|l| l.as_str().expect("a library name").to_string())
        .collect();
    let rows = field(results, "rows").as_array().expect("rows: an array");
    let versions = results.get("versions");

    let group_h = libraries.len() as f64 * (BAR_H + BAR_GAP) - BAR_GAP;
    let height = TOP + rows.len() as f64 * (group_h + GROUP_GAP) + 40.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );

    // Title: what, when, where.
    let title = format!(
        "wsmachine and its peers, {} (median of {} runs)",
        text_of(results, "date")
            .replace('T', " ")
            .trim_end_matches('Z'),
        text_of(results, "runs"),
    );
    let machine = format!(
        "{}, {} cores, {}, {} build; socket reads of at most {} bytes",
        text_of(results, "cpu"),
        text_of(results, "cores"),
        text_of(results, "rustc"),
        text_of(results, "profile"),
        text_of(results, "read_size"),
    );
    let _ = writeln!(
        svg,
        r#"<text x="{LABEL_X}" y="30" font-size="18" font-weight="600">{}</text>"#,
        escape(&title)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LABEL_X}" y="52" fill="#495057">{}</text>"##,
        escape(&machine)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LABEL_X}" y="72" fill="#495057">Bars: relative to the best library of each workload (longer is better, for bytes too). Labels: the measured figure.</text>"##
    );

    // Legend.
    let mut x = LABEL_X;
    for (i, lib) in libraries.iter().enumerate() {
        let version = versions
            .and_then(|v| v.get(lib))
            .and_then(Value::as_str)
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        let label = format!("{lib}{version}");
        let color = COLORS[i % COLORS.len()];
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="88" width="14" height="14" rx="2" fill="{color}"/><text x="{}" y="100">{}</text>"#,
            x + 20.0,
            escape(&label)
        );
        // A rough width for 13 px text, so entries do not overlap.
        x += 20.0 + label.chars().count() as f64 * 7.2 + 24.0;
    }

    // One group per row.
    let mut y = TOP;
    for (r, row) in rows.iter().enumerate() {
        let unit = text_of(row, "unit");
        let lower_better = text_of(row, "better") == "lower";
        let values: Vec<Option<f64>> = libraries
            .iter()
            .map(|lib| {
                row.get("values")
                    .and_then(|v| v.get(lib))
                    .and_then(Value::as_f64)
            })
            .collect();
        let present = values.iter().flatten().copied();
        let best = if lower_better {
            present.fold(f64::INFINITY, f64::min)
        } else {
            present.fold(0.0, f64::max)
        };

        if r % 2 == 1 {
            let _ = writeln!(
                svg,
                r##"<rect x="8" y="{}" width="{}" height="{}" fill="#f1f3f5"/>"##,
                y - GROUP_GAP / 2.0,
                WIDTH - 16.0,
                group_h + GROUP_GAP
            );
        }
        let middle = y + group_h / 2.0;
        let _ = writeln!(
            svg,
            r#"<text x="{LABEL_X}" y="{}" font-weight="600">{}</text>"#,
            middle - 2.0,
            escape(&text_of(row, "label"))
        );
        let note = if lower_better {
            format!("{unit}, lower is better")
        } else {
            format!("{unit}, higher is better")
        };
        let _ = writeln!(
            svg,
            r##"<text x="{LABEL_X}" y="{}" fill="#495057">{}</text>"##,
            middle + 14.0,
            escape(&note)
        );

        for (i, value) in values.iter().enumerate() {
            let bar_y = y + i as f64 * (BAR_H + BAR_GAP);
            let color = COLORS[i % COLORS.len()];
            let Some(v) = *value else {
                let _ = writeln!(
                    svg,
                    r##"<text x="{BAR_X}" y="{}" fill="#868e96">n/a</text>"##,
                    bar_y + BAR_H - 3.0
                );
                continue;
            };
            let share = if lower_better {
                if v <= 0.0 { 1.0 } else { best / v }
            } else if best > 0.0 {
                v / best
            } else {
                0.0
            };
            let len = (share.clamp(0.0, 1.0) * BAR_MAX).max(1.0);
            let label = format!("{} {unit}", format_value(&unit, v));
            let weight = if share >= 0.999 { "600" } else { "400" };
            let _ = writeln!(
                svg,
                r#"<rect x="{BAR_X}" y="{bar_y}" width="{len:.1}" height="{BAR_H}" rx="2" fill="{color}"><title>{}: {}</title></rect>"#,
                escape(&libraries[i]),
                escape(&label)
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{}" font-weight="{weight}">{}</text>"#,
                BAR_X + len + 6.0,
                bar_y + BAR_H - 3.0,
                escape(&label)
            );
        }
        y += group_h + GROUP_GAP;
    }
    let _ = writeln!(
        svg,
        r##"<text x="{LABEL_X}" y="{}" fill="#868e96" font-size="11">benches/peers: cargo run --release --bin compare, then --bin chart. msg/s and GB/s (10^9 bytes of payload per second) per connection, on one thread.</text>"##,
        height - 16.0
    );
    svg.push_str("</svg>\n");
    svg
}

fn main() {
    let mut input = concat!(env!("CARGO_MANIFEST_DIR"), "/results.json").to_string();
    let mut output = concat!(env!("CARGO_MANIFEST_DIR"), "/chart.svg").to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--in" => input = args.next().expect("--in takes a path"),
            "--out" => output = args.next().expect("--out takes a path"),
            "-h" | "--help" => {
                println!("chart [--in results.json] [--out chart.svg]");
                return;
            }
            other => panic!("unknown argument {other:?} (try --help)"),
        }
    }
    let text =
        std::fs::read_to_string(&input).unwrap_or_else(|e| panic!("cannot read {input}: {e}"));
    let results: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{input} is not JSON: {e}"));
    std::fs::write(&output, chart(&results))
        .unwrap_or_else(|e| panic!("cannot write {output}: {e}"));
    eprintln!("wrote {output}");
}
