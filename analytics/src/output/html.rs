//! A self-contained HTML page per app: the charts as inline SVG, then every report's tables.
//! No script, no external stylesheet, font or image: the page works offline and from a mail.

use std::fmt::Write;

use polars::prelude::DataFrame;

use cauce_store::lake::layout::safe_name;

use crate::error::Result;
use crate::output::{charts, text_table, CHART_ONLY};
use crate::report::Reports;

/// Rows shown per table; the JSON output has them all.
const MAX_ROWS: usize = 200;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:960px;color:#111827}\
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #e5e7eb}figure{margin:1rem 0}\
figcaption{font-weight:600;margin-bottom:.3rem}table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}\
td,th{border:1px solid #e5e7eb;padding:.2rem .5rem;text-align:right}th{background:#f3f4f6}\
td:first-child,th:first-child{text-align:left}.note{color:#6b7280}";

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn table(df: &DataFrame, out: &mut String) -> Result<()> {
    if df.height() == 0 {
        out.push_str("<p class=\"note\">No rows.</p>\n");
        return Ok(());
    }
    let (columns, rows) = text_table(df, &["app_id"], MAX_ROWS)?;
    out.push_str("<table><tr>");
    for c in &columns {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for c in row {
            let _ = write!(out, "<td>{}</td>", escape(&c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    if df.height() > MAX_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"note\">First {MAX_ROWS} of {} rows; the JSON report has them all.</p>",
            df.height()
        );
    }
    Ok(())
}

/// The page of one app: `reports` must hold that app's rows only (see [`Reports::for_app`]).
pub fn page(app: &str, subtitle: &str, reports: &Reports) -> Result<String> {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Cauce · {app}</title><style>{STYLE}</style></head><body>\n\
         <h1>Cauce report · {app}</h1>\n<p class=\"note\">{subtitle}</p>\n",
        app = escape(app),
        subtitle = escape(subtitle),
    );
    out.push_str("<section id=\"charts\">\n");
    for chart in charts::all(reports)? {
        let _ = write!(
            out,
            "<figure class=\"chart\"><figcaption>{}</figcaption>\n{}\n</figure>\n",
            escape(&chart.title),
            chart.svg
        );
    }
    out.push_str("</section>\n");
    for report in &reports.0 {
        let _ = writeln!(out, "<section id=\"{0}\"><h2>{0}</h2>", report.name);
        for (name, df) in &report.tables {
            if CHART_ONLY.contains(name) {
                continue;
            }
            if report.tables.len() > 1 {
                let _ = writeln!(out, "<h3>{name}</h3>");
            }
            table(df, &mut out)?;
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

/// An index page linking to each app's page (`{app}.html`, the app id made safe by
/// [`safe_name`]).
pub fn index(apps: &[String], subtitle: &str) -> String {
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cauce reports</title>\
         <style>{STYLE}</style></head><body><h1>Cauce reports</h1><p class=\"note\">{}</p><ul>\n",
        escape(subtitle)
    );
    for app in apps {
        let _ = writeln!(
            out,
            "<li><a href=\"{0}.html\">{1}</a></li>",
            escape(&safe_name(app)),
            escape(app)
        );
    }
    out.push_str("</ul></body></html>\n");
    out
}
