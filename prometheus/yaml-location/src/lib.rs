//! One way to report a problem in a YAML file, for every configuration etcd-monitor reads (the
//! alerter's Prometheus configuration, rule files and unit tests, `alertmanager.yml`, the exporter's
//! cluster file, the web configuration): `file:line:column: message`, the line and column 1-based.
//!
//! serde_yaml appends its own position to its messages (`... at line 3 column 5`); a caller that also
//! puts the location in front prints it twice. [`YamlError::from_serde`] takes the position out of the
//! message and into the location. serde_yaml knows only the enclosing mapping's position for a bad
//! value inside it, so callers that know the key find its line with [`find`].
//!
//! Its own crate because every configuration reader needs it and they share nothing else:
//! `prom-exposition` is about the exposition formats and depends on nothing but thiserror,
//! `prom-http-config` about HTTP clients, which rule files and the cluster file do not have.
//!
//! Does not know: what the files mean.

use std::fmt;

/// A problem in a YAML file. Displayed `file:line:column: message`; a part of the location that is
/// unknown (0) is left out: `file:line: message`, `file: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct YamlError {
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl YamlError {
    pub fn new(
        file: impl Into<String>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        YamlError {
            file: file.into(),
            line,
            column,
            message: message.into(),
        }
    }

    /// A problem with the file as a whole (it cannot be read, say).
    pub fn unlocated(file: impl Into<String>, message: impl Into<String>) -> Self {
        YamlError::new(file, 0, 0, message)
    }

    /// serde_yaml's error at its position, the position taken out of its message.
    pub fn from_serde(file: impl Into<String>, e: &serde_yaml::Error) -> Self {
        let (line, column) = position(e).unwrap_or((0, 0));
        YamlError::new(file, line, column, message(e))
    }

    /// The same problem placed at `line`, `column` (where the caller found the key it is about).
    pub fn at(mut self, (line, column): (usize, usize)) -> Self {
        self.line = line;
        self.column = column;
        self
    }

    /// Without the column, for reports that give lines only (promtool's rule-file errors).
    pub fn line_only(mut self) -> Self {
        self.column = 0;
        self
    }
}

/// serde_yaml's position of the error (1-based line and column), if it has one.
pub fn position(e: &serde_yaml::Error) -> Option<(usize, usize)> {
    e.location().map(|l| (l.line(), l.column()))
}

/// serde_yaml's message without the ` at line L column C` it appends.
pub fn message(e: &serde_yaml::Error) -> String {
    let text = e.to_string();
    if let Some((line, column)) = position(e) {
        if let Some(bare) = text.strip_suffix(&format!(" at line {line} column {column}")) {
            return bare.to_string();
        }
    }
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The 1-based line and column of the first occurrence of `needle` on line `from` (1-based) or below.
pub fn find(text: &str, needle: &str, from: usize) -> Option<(usize, usize)> {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find_map(|(i, l)| l.find(needle).map(|c| (i + 1, c + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct File {
        global: Global,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Global {
        interval: u32,
    }

    fn serde_error(text: &str) -> serde_yaml::Error {
        serde_yaml::from_str::<File>(text).unwrap_err()
    }

    #[test]
    fn the_location_is_printed_once_in_front() {
        let e = serde_error("global:\n  interval: 1\n  intervl: 2\n");
        // serde_yaml's own text, which the location must not be printed after again.
        assert_eq!(
            e.to_string(),
            "global: unknown field `intervl`, expected `interval` at line 3 column 3"
        );
        let e = YamlError::from_serde("c.yml", &e);
        assert_eq!(
            e.to_string(),
            "c.yml:3:3: global: unknown field `intervl`, expected `interval`"
        );
        assert_eq!(
            e.clone().line_only().to_string(),
            "c.yml:3: global: unknown field `intervl`, expected `interval`"
        );
        assert_eq!(
            e.at((1, 1)).to_string(),
            "c.yml:1:1: global: unknown field `intervl`, expected `interval`"
        );
    }

    #[test]
    fn syntax_errors_keep_their_text() {
        let e = serde_error("global: [1\n");
        let located = YamlError::from_serde("c.yml", &e);
        assert!(located.line > 0, "{located:?}");
        assert!(!located.message.contains(" at line "), "{located}");
        assert!(located.to_string().starts_with("c.yml:"), "{located}");
    }

    #[test]
    fn unknown_parts_of_the_location_are_left_out() {
        assert_eq!(
            YamlError::unlocated("a.yml", "cannot read: gone").to_string(),
            "a.yml: cannot read: gone"
        );
        assert_eq!(
            YamlError::new("a.yml", 4, 0, "bad").to_string(),
            "a.yml:4: bad"
        );
    }

    #[test]
    fn keys_are_found_below_a_line() {
        let text = "a:\n  name: x\nb:\n  name: y\n";
        assert_eq!(find(text, "name:", 1), Some((2, 3)));
        assert_eq!(find(text, "name:", 3), Some((4, 3)));
        assert_eq!(find(text, "nope", 1), None);
    }
}
