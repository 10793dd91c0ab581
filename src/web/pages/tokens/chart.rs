//! A token's usage over the last 30 days as an SVG bar chart drawn on the server (no script
//! needed), with a sentence that says what it shows.

/// A bar of the usage chart: where it is drawn and what it says.
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    pub label: String,
}

/// The last 30 days as an SVG bar chart drawn on the server (no script needed).
pub struct Chart {
    pub bars: Vec<Bar>,
    pub first: String,
    pub last: String,
    pub summary: String,
}

/// Chart area: 30 bars of 16 px with 4 px gaps, up to 100 px tall.
const CHART_HEIGHT: u32 = 100;

pub fn chart(days: &[(time::Date, i64)]) -> Chart {
    let max = days.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let total: i64 = days.iter().map(|(_, n)| *n).sum();
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, (day, n))| {
            // A day with requests shows at least a sliver.
            let height = if max == 0 || *n == 0 {
                0
            } else {
                ((*n as f64 / max as f64) * CHART_HEIGHT as f64)
                    .ceil()
                    .max(2.0) as u32
            };
            Bar {
                x: i as u32 * 20,
                y: CHART_HEIGHT - height,
                height,
                label: format!("{day}: {}", crate::domain::count(*n, "request", "requests")),
            }
        })
        .collect();
    let busiest = days
        .iter()
        .filter(|(_, n)| *n == max && max > 0)
        .map(|(d, _)| d.to_string())
        .next();
    Chart {
        bars,
        first: days.first().map(|(d, _)| d.to_string()).unwrap_or_default(),
        last: days.last().map(|(d, _)| d.to_string()).unwrap_or_default(),
        summary: match busiest {
            Some(day) => format!(
                "{} in the last 30 days; the most, {max}, on {day}.",
                crate::domain::count(total, "request", "requests")
            ),
            None => "No requests in the last 30 days.".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_chart_scales_bars_to_the_busiest_day_and_says_it() {
        let today = date!(2026 - 11 - 28);
        let days = crate::services::tokens::usage::fill_days(
            &[(today, 40), (date!(2026 - 11 - 20), 1)],
            today,
        );
        let c = chart(&days);
        assert_eq!(c.bars.len(), 30);
        assert_eq!(
            (c.bars[29].height, c.bars[29].y, c.bars[29].x),
            (100, 0, 580)
        );
        assert_eq!(
            c.bars[21].height, 3,
            "a quiet day still shows: ceil(1/40*100)"
        );
        assert_eq!(c.bars[0].height, 0);
        assert_eq!(c.bars[29].label, "2026-11-28: 40 requests");
        assert_eq!(
            c.summary,
            "41 requests in the last 30 days; the most, 40, on 2026-11-28."
        );
        assert_eq!(
            (c.first.as_str(), c.last.as_str()),
            ("2026-10-30", "2026-11-28")
        );
        let empty = chart(&crate::services::tokens::usage::fill_days(&[], today));
        assert!(empty.bars.iter().all(|b| b.height == 0));
        assert_eq!(empty.summary, "No requests in the last 30 days.");
    }
}
