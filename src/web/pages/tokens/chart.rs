//! A token's usage over the last 30 days as an SVG bar chart drawn on the server (no script
//! needed), with a sentence that says what it shows.

/// A bar of the usage chart: where it is drawn and what it says.
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    /// The refused part, drawn on top of the allowed part (0: none).
    pub refused_y: u32,
    pub refused_height: u32,
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

/// How a day's (or the month's) refusals read: "2 outside its routes, 1 over its rate".
fn refusal_words(r: &[i64; 3]) -> String {
    [
        (r[0], "outside its routes"),
        (r[1], "over its rate"),
        (r[2], "over its quota"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, why)| format!("{n} {why}"))
    .collect::<Vec<_>>()
    .join(", ")
}

/// `days`' requests, and of them those refused by the token's limits (`refused`, the same
/// days; shorter: none refused).
pub fn chart(days: &[(time::Date, i64)], refused: &[[i64; 3]]) -> Chart {
    let max = days.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let total: i64 = days.iter().map(|(_, n)| *n).sum();
    let mut refused_total = [0i64; 3];
    for r in refused {
        for (t, n) in refused_total.iter_mut().zip(r) {
            *t += n;
        }
    }
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, (day, n))| {
            let no = [0; 3];
            let r = refused.get(i).unwrap_or(&no);
            let refused_n: i64 = r.iter().sum::<i64>().min(*n);
            // A day with requests shows at least a sliver.
            let height = if max == 0 || *n == 0 {
                0
            } else {
                ((*n as f64 / max as f64) * CHART_HEIGHT as f64)
                    .ceil()
                    .max(2.0) as u32
            };
            let refused_height = if refused_n == 0 {
                0
            } else {
                ((refused_n as f64 / *n as f64) * height as f64)
                    .ceil()
                    .clamp(1.0, height as f64) as u32
            };
            let mut label = format!("{day}: {}", crate::domain::count(*n, "request", "requests"));
            if refused_n > 0 {
                label.push_str(&format!(
                    " ({} allowed; refused: {})",
                    n - refused_n,
                    refusal_words(r)
                ));
            }
            Bar {
                x: i as u32 * 20,
                y: CHART_HEIGHT - height,
                height,
                refused_y: CHART_HEIGHT - height,
                refused_height,
                label,
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
            Some(day) if refused_total.iter().sum::<i64>() > 0 => format!(
                "{} in the last 30 days; the most, {max}, on {day}. {} allowed; refused: {}.",
                crate::domain::count(total, "request", "requests"),
                total - refused_total.iter().sum::<i64>(),
                refusal_words(&refused_total)
            ),
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
        let c = chart(&days, &[]);
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
        let empty = chart(&crate::services::tokens::usage::fill_days(&[], today), &[]);
        assert!(empty.bars.iter().all(|b| b.height == 0));
        assert_eq!(empty.summary, "No requests in the last 30 days.");
        // Refusals: the top of a day's bar, in its label and the sentence.
        let mut refused = vec![[0i64; 3]; 30];
        refused[29] = [4, 6, 0];
        let c = chart(&days, &refused);
        assert_eq!((c.bars[29].refused_height, c.bars[29].refused_y), (25, 0));
        assert_eq!(
            c.bars[29].label,
            "2026-11-28: 40 requests (30 allowed; refused: 4 outside its routes, 6 over its rate)"
        );
        assert_eq!(c.bars[21].refused_height, 0);
        assert!(
            c.summary
                .ends_with("31 allowed; refused: 4 outside its routes, 6 over its rate."),
            "{}",
            c.summary
        );
    }
}
