//! SVG charts drawn with plotters (its SVG backend writes text as `<text>` elements, so no
//! font library is needed): latency by percentile per operation, throughput per second of
//! the measurement window, and fan-out lag CDFs.

use plotters::prelude::*;

use crate::stats::Latency;

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e:?}")
}

const SIZE: (u32, u32) = (800, 450);

/// A named line of `(x, y)` points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

struct Axes<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    x_label: &'a dyn Fn(&f64) -> String,
}

fn line_chart(axes: Axes<'_>, series: &[Series]) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let pts = series.iter().flat_map(|s| s.points.iter());
        let (mut x_max, mut y_max) = (0f64, 0f64);
        let mut x_min = f64::INFINITY;
        for &(x, y) in pts {
            x_max = x_max.max(x);
            x_min = x_min.min(x);
            y_max = y_max.max(y);
        }
        if !x_min.is_finite() {
            x_min = 0.0;
        }
        let x_min = x_min.min(0.0);
        let x_max = if x_max > x_min { x_max } else { x_min + 1.0 };
        let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
        let mut chart = ChartBuilder::on(&root)
            .caption(axes.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_min..x_max, 0f64..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(axes.x_desc)
            .y_desc(axes.y_desc)
            .x_label_formatter(axes.x_label)
            .draw()
            .map_err(err)?;
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The "nines" axis: percentile p sits at -log10(1 - p/100), so 90, 99, 99.9 are evenly
/// spaced; 100 is drawn one step past the last finite point.
fn nines(p: f64) -> f64 {
    if p >= 100.0 {
        5.0
    } else {
        -(1.0 - p / 100.0).log10()
    }
}

fn nines_label(x: &f64) -> String {
    if *x >= 5.0 {
        "max".into()
    } else {
        let p = 100.0 * (1.0 - 10f64.powf(-x));
        format!("{p:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

/// Latency (ms) against percentile, one line per operation.
pub fn latency_percentiles(title: &str, ops: &[(String, Latency)]) -> anyhow::Result<String> {
    let series: Vec<Series> = ops
        .iter()
        .map(|(name, l)| Series {
            name: name.clone(),
            points: l.curve.iter().map(|&(p, v)| (nines(p), v)).collect(),
        })
        .collect();
    line_chart(
        Axes {
            title,
            x_desc: "percentile",
            y_desc: "latency (ms, from intended send time)",
            x_label: &nines_label,
        },
        &series,
    )
}

/// Completions per second of the measurement window, one line per operation.
pub fn throughput(title: &str, ops: &[(String, Vec<u64>)]) -> anyhow::Result<String> {
    let series: Vec<Series> = ops
        .iter()
        .map(|(name, per_second)| Series {
            name: name.clone(),
            points: per_second
                .iter()
                .enumerate()
                .map(|(s, &n)| (s as f64, n as f64))
                .collect(),
        })
        .collect();
    line_chart(
        Axes {
            title,
            x_desc: "second of the measurement",
            y_desc: "completed per second",
            x_label: &|x| format!("{x:.0}"),
        },
        &series,
    )
}

/// Cumulative share of followers that saw a post by each lag (ms).
pub fn lag_cdf(title: &str, cdfs: &[(String, Vec<(f64, f64)>)]) -> anyhow::Result<String> {
    let series: Vec<Series> = cdfs
        .iter()
        .filter(|(_, c)| !c.is_empty())
        .map(|(name, c)| {
            // A step at each recorded value, starting from zero.
            let mut points = vec![(0.0, 0.0)];
            let mut prev = 0.0;
            for &(x, y) in c {
                points.push((x, prev));
                points.push((x, y));
                prev = y;
            }
            Series {
                name: name.clone(),
                points,
            }
        })
        .collect();
    line_chart(
        Axes {
            title,
            x_desc: "fan-out lag (ms, post acknowledged → visible)",
            y_desc: "share of deliveries",
            x_label: &|x| format!("{x:.0}"),
        },
        &series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{OpStats, cdf};

    fn latency() -> Latency {
        let mut s = OpStats::default();
        for i in 1..=1000u64 {
            s.record(i * 10, 0, None);
        }
        Latency::of(&s.latency)
    }

    #[test]
    fn nines_axis_round_trips() {
        assert!((nines(99.0) - 2.0).abs() < 1e-9);
        assert_eq!(nines_label(&2.0), "99");
        assert_eq!(nines_label(&3.0), "99.9");
        assert_eq!(nines_label(&5.0), "max");
        assert_eq!(nines_label(&0.0), "0");
    }

    #[test]
    fn charts_are_svg_with_their_series() {
        let svg = latency_percentiles("latency", &[("home_read".into(), latency())]).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("home_read") && svg.contains("<polyline"));
        let svg = throughput("tput", &[("post".into(), vec![10, 12, 9])]).unwrap();
        assert!(svg.contains("post"));
        let mut s = OpStats::default();
        s.record(5_000, 0, None);
        s.record(9_000, 0, None);
        let svg = lag_cdf(
            "lag",
            &[("home".into(), cdf(&s.latency)), ("stream".into(), vec![])],
        )
        .unwrap();
        assert!(svg.contains("home") && !svg.contains(">stream<"));
        // An empty chart still draws.
        assert!(lag_cdf("none", &[]).unwrap().starts_with("<svg"));
    }
}
