//! Differences between two prompt texts, ready to draw: line by line, with the changed
//! words inside a changed line emphasised. Pure Rust (the `similar` crate), so it is
//! tested natively and runs the same in the browser.

use similar::{ChangeTag, TextDiff};

/// Whether a piece of text is in both versions, only the old one, or only the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Same,
    Removed,
    Added,
}

impl Side {
    /// The CSS class the UI draws it with.
    pub fn class(self) -> &'static str {
        match self {
            Side::Same => "same",
            Side::Removed => "removed",
            Side::Added => "added",
        }
    }
}

/// One line of a diff, with its numbers in the old and the new text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub side: Side,
    pub old_number: Option<usize>,
    pub new_number: Option<usize>,
    /// The line's text in pieces; `true` marks the words that changed.
    pub pieces: Vec<(bool, String)>,
}

/// A word (or whitespace run) of a word-level diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub side: Side,
    pub text: String,
}

fn side(tag: ChangeTag) -> Side {
    match tag {
        ChangeTag::Equal => Side::Same,
        ChangeTag::Delete => Side::Removed,
        ChangeTag::Insert => Side::Added,
    }
}

/// A line diff of `old` → `new` (unified order: removed lines before the added ones
/// that replace them), with word emphasis inside replaced lines.
pub fn lines(old: &str, new: &str) -> Vec<Line> {
    let diff = TextDiff::from_lines(old, new);
    let mut out = Vec::new();
    for op in diff.ops() {
        for change in diff.iter_inline_changes(op) {
            let pieces = change
                .iter_strings_lossy()
                .map(|(emphasised, s)| (emphasised, s.trim_end_matches(['\n', '\r']).to_owned()))
                .filter(|(_, s)| !s.is_empty())
                .collect();
            out.push(Line {
                side: side(change.tag()),
                old_number: change.old_index().map(|i| i + 1),
                new_number: change.new_index().map(|i| i + 1),
                pieces,
            });
        }
    }
    out
}

/// A word-level diff of `old` → `new`, for prose shown side by side. Neighbouring changes
/// (only whitespace between them) read as one replacement: all the removed words, then
/// all the added ones, rather than alternating word by word.
pub fn words(old: &str, new: &str) -> Vec<Word> {
    let diff = TextDiff::from_words(old, new);
    let mut out: Vec<Word> = Vec::new();
    let push = |out: &mut Vec<Word>, side: Side, text: &str| {
        if text.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(last) if last.side == side => last.text.push_str(text),
            _ => out.push(Word { side, text: text.to_owned() }),
        }
    };
    // The replacement being gathered: its old-side and new-side text.
    let (mut removed, mut added) = (String::new(), String::new());
    // Whitespace seen after a change; it joins the replacement if another change follows.
    let mut gap = String::new();
    for change in diff.iter_all_changes() {
        let value = change.value();
        match change.tag() {
            ChangeTag::Equal if value.trim().is_empty() && !(removed.is_empty() && added.is_empty()) => {
                gap.push_str(value)
            }
            ChangeTag::Equal => {
                push(&mut out, Side::Removed, &removed);
                push(&mut out, Side::Added, &added);
                removed.clear();
                added.clear();
                push(&mut out, Side::Same, &gap);
                gap.clear();
                push(&mut out, Side::Same, value);
            }
            tag => {
                removed.push_str(&gap);
                added.push_str(&gap);
                gap.clear();
                if tag == ChangeTag::Delete {
                    removed.push_str(value)
                } else {
                    added.push_str(value)
                }
            }
        }
    }
    push(&mut out, Side::Removed, &removed);
    push(&mut out, Side::Added, &added);
    push(&mut out, Side::Same, &gap);
    out
}

/// How many lines were added and removed, for a one-line summary.
pub fn counts(lines: &[Line]) -> (usize, usize) {
    let added = lines.iter().filter(|l| l.side == Side::Added).count();
    let removed = lines.iter().filter(|l| l.side == Side::Removed).count();
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                let mark = match l.side {
                    Side::Same => ' ',
                    Side::Removed => '-',
                    Side::Added => '+',
                };
                let text: String =
                    l.pieces.iter().map(|(e, s)| if *e { format!("[{s}]") } else { s.clone() }).collect();
                format!("{mark}{text}")
            })
            .collect()
    }

    #[test]
    fn a_changed_word_is_emphasised_inside_its_line() {
        let old = "You are a support agent.\nGreet {{ name }} warmly.\nBe brief.";
        let new = "You are a support agent.\nGreet {{ name }} politely.\nBe brief.";
        let diff = lines(old, new);
        assert_eq!(
            render(&diff),
            [" You are a support agent.", "-Greet {{ name }} [warmly.]", "+Greet {{ name }} [politely.]", " Be brief."]
        );
        assert_eq!(counts(&diff), (1, 1));
        assert_eq!((diff[1].old_number, diff[1].new_number), (Some(2), None));
        assert_eq!((diff[2].old_number, diff[2].new_number), (None, Some(2)));
    }

    #[test]
    fn added_and_removed_lines_keep_their_numbers() {
        let diff = lines("a\nb\nc\n", "a\nc\nd\n");
        assert_eq!(render(&diff), [" a", "-b", " c", "+d"]);
        assert_eq!(diff[3].new_number, Some(3));
    }

    #[test]
    fn identical_texts_have_no_changes() {
        let diff = lines("same\ntext", "same\ntext");
        assert_eq!(counts(&diff), (0, 0));
        assert!(words("same text", "same text").iter().all(|w| w.side == Side::Same));
    }

    #[test]
    fn word_diff_groups_runs_of_the_same_side() {
        let w = words("Answer briefly and politely.", "Answer politely and in full.");
        let removed: String = w.iter().filter(|w| w.side == Side::Removed).map(|w| w.text.as_str()).collect();
        let added: String = w.iter().filter(|w| w.side == Side::Added).map(|w| w.text.as_str()).collect();
        assert!(removed.contains("briefly"), "{w:?}");
        assert!(added.contains("in full."), "{w:?}");
        let old: String = w.iter().filter(|w| w.side != Side::Added).map(|w| w.text.as_str()).collect();
        let new: String = w.iter().filter(|w| w.side != Side::Removed).map(|w| w.text.as_str()).collect();
        assert_eq!(old, "Answer briefly and politely.");
        assert_eq!(new, "Answer politely and in full.");
    }

    #[test]
    fn a_reworded_sentence_reads_as_one_replacement() {
        let w = words("Ask what can I do for you today? Thanks.", "Ask one short question about their need. Thanks.");
        let sides: Vec<Side> = w.iter().map(|w| w.side).collect();
        assert_eq!(sides, [Side::Same, Side::Removed, Side::Added, Side::Same], "{w:?}");
        assert_eq!(w[1].text, "what can I do for you today?");
        assert_eq!(w[2].text, "one short question about their need.");
        let old: String = w.iter().filter(|w| w.side != Side::Added).map(|w| w.text.as_str()).collect();
        assert_eq!(old, "Ask what can I do for you today? Thanks.");
    }
}
