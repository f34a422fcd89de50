//! Finding a place in the scenario text for errors found after parsing.
//!
//! RON gives positions for syntax and value errors, but a cross-reference error (a
//! subscriber on a topic that does not exist) is found later, on parsed data. We find its
//! place by searching the text for a path of anchors — e.g. `subscribers`, then `"billing"`,
//! then `topic`: each anchor is searched after the previous one, outside comments. Good
//! enough to point at the right line; when an anchor is missing the last one found is used.

/// Searches scenario text for anchors.
pub struct Locator<'a> {
    src: &'a str,
    /// The text with comments blanked out, same byte offsets.
    code: String,
}

impl<'a> Locator<'a> {
    /// A locator over `src`.
    pub fn new(src: &'a str) -> Self {
        Locator {
            src,
            code: blank_comments(src),
        }
    }

    /// The 1-based (line, column) of the last anchor found along the path.
    pub fn find(&self, anchors: &[&str]) -> Option<(usize, usize)> {
        let mut from = 0;
        let mut found = None;
        for a in anchors {
            if let Some(i) = self.code[from..].find(a) {
                found = Some(from + i);
                from += i + a.len();
            }
        }
        found.map(|i| line_col(self.src, i))
    }

    /// The first character that is not blank or a comment: where the scenario starts.
    pub fn start(&self) -> (usize, usize) {
        let i = self.code.find(|c: char| !c.is_whitespace()).unwrap_or(0);
        line_col(self.src, i)
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
pub fn line_col(src: &str, at: usize) -> (usize, usize) {
    let before = &src[..at.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Replaces `// ...` and `/* ... */` comments with spaces (keeping byte offsets and
/// newlines), leaving string literals alone.
fn blank_comments(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        if in_str {
            match b[i] {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
            i += 1;
        } else if b[i] == b'"' {
            in_str = true;
            i += 1;
        } else if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                blank(&mut out, i);
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            while i < b.len() && !b[i..].starts_with(b"*/") {
                if b[i] != b'\n' {
                    blank(&mut out, i);
                }
                i += 1;
            }
            for _ in 0..2.min(b.len() - i) {
                blank(&mut out, i);
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    // Only ASCII bytes were replaced, so the text is still UTF-8 with the same offsets.
    String::from_utf8(out).unwrap_or_default()
}

/// Blanks an ASCII byte; multi-byte characters are left whole so the text stays UTF-8.
fn blank(out: &mut [u8], i: usize) {
    if out[i].is_ascii() {
        out[i] = b' ';
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_along_a_path_and_skips_comments() {
        let src =
            "// topic: \"x\"\nScenario(\n  subscribers: [\n    (id: \"a\", topic: \"x\"),\n  ],\n)";
        let l = Locator::new(src);
        assert_eq!(
            l.find(&["subscribers", "\"a\"", "topic", "\"x\""]),
            Some((4, 22))
        );
        assert_eq!(l.find(&["nowhere"]), None);
        assert_eq!(l.start(), (2, 1));
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("", 0), (1, 1));
    }
}
