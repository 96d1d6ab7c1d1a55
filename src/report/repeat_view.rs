//! The "Repeated Runs" table (examples/001's "Results (5 runs)"): each
//! metric per run, mean, standard deviation, coefficient of variation and
//! the figure of all runs merged.

use super::format::{NONE, fixed, ms, pct, rate};
use super::repeat_model::{RepeatRow, Repeats};
use super::view::Table;

pub(crate) fn table(r: &Repeats) -> Table {
    let mut headers: Vec<String> = vec!["Metric".into()];
    headers.extend((1..=r.runs.len()).map(|i| format!("Run {i}")));
    headers.extend(["Mean", "SD", "CV", "All runs merged"].map(String::from));
    Table {
        headers,
        rows: r.rows.iter().map(row).collect(),
    }
}

fn row(r: &RepeatRow) -> Vec<String> {
    let mut cells = vec![r.label.clone()];
    cells.extend(r.values.iter().map(|v| value(&r.unit, *v)));
    cells.push(value(&r.unit, r.mean));
    cells.push(value(&r.unit, r.stdev));
    cells.push(r.cv.map_or_else(|| NONE.to_owned(), pct));
    cells.push(value(&r.unit, r.merged));
    cells
}

fn value(unit: &str, v: Option<f64>) -> String {
    let Some(v) = v else {
        return NONE.to_owned();
    };
    match unit {
        "ms" => ms(v),
        "ratio" => pct(v),
        "req/s" | "tok/s" => rate(v),
        _ => fixed(v, 2),
    }
}
