//! Serving a shelf of embedded documents (`agents-guide`, `recipes`): the
//! list, one document, as text or JSON. Both commands take the same words:
//! nothing or `list`, `show NAME`, or just `NAME`.

use std::io::Write;

use serde::Serialize;

use crate::docs::{Doc, Shelf};
use crate::error::{CliError, CliResult, code};

/// Lists the shelf, or prints the document the words name.
pub(crate) fn serve(shelf: Shelf, words: &[String], json: bool) -> CliResult {
    let query = match words {
        [] => None,
        [word] if word == "list" => None,
        [word, name] if word == "show" => Some(name.as_str()),
        [word] if word == "show" => {
            return Err(CliError::usage(format!("`{} show` needs a name", shelf.command()))
                .hint(format!("`{}` lists them", shelf.command())));
        }
        [name] => Some(name.as_str()),
        _ => {
            return Err(CliError::usage(format!(
                "unexpected arguments: {} (give one name, or `show NAME`)",
                words.join(" ")
            )));
        }
    };
    match query {
        None => list(shelf, json),
        Some(query) => show(&shelf.find(query)?, json),
    }
}

fn list(shelf: Shelf, json: bool) -> CliResult {
    let docs = shelf.docs();
    if json {
        let entries: Vec<Entry> = docs.iter().map(|doc| Entry::of(doc, None)).collect();
        crate::cli::print_json(&entries)?;
        return Ok(code::OK);
    }
    let width = docs.iter().map(|d| d.name.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for doc in &docs {
        match shelf {
            Shelf::AgentGuides => writeln!(out, "  {:width$}  {}", doc.name, doc.title)?,
            Shelf::Recipes => {
                writeln!(out, "  {:>2}  {:width$}  {}", doc.number, doc.name, doc.title)?
            }
        }
    }
    let example = docs.first().map_or("", |d| d.name);
    writeln!(
        out,
        "\nRead one: {} {example}   (a number or the start of a name will do)",
        shelf.command()
    )?;
    out.flush()?;
    Ok(code::OK)
}

/// A document as JSON: in a list without its text, shown with it.
#[derive(Serialize)]
struct Entry<'a> {
    number: u32,
    name: &'a str,
    title: &'a str,
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

impl<'a> Entry<'a> {
    fn of(doc: &'a Doc, text: Option<&'a str>) -> Entry<'a> {
        Entry { number: doc.number, name: doc.name, title: doc.title, file: &doc.file, text }
    }
}

fn show(doc: &Doc, json: bool) -> CliResult {
    if json {
        crate::cli::print_json(&Entry::of(doc, Some(doc.text)))?;
    } else {
        print_markdown(doc.text)?;
    }
    Ok(code::OK)
}

/// Prints a Markdown document as it is, ending with one newline.
pub(crate) fn print_markdown(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.trim_end().as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}
