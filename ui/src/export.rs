//! A prompt's history as files an auditor can keep: JSON Lines (every field, as the API
//! returns it) or CSV for a spreadsheet (one row per event, the payload as JSON text).

use serde_json::Value;

/// The columns of the CSV export, in order.
pub const CSV_COLUMNS: [&str; 8] =
    ["position", "recorded_at", "actor", "type", "stream_version", "payload", "hash", "prev_hash"];

/// One event per line, exactly as the API returned it.
pub fn json_lines(events: &[Value]) -> String {
    events.iter().map(|e| format!("{e}\n")).collect()
}

/// A CSV file with a header row, quoted where needed.
pub fn csv(events: &[Value]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_COLUMNS).expect("writing to memory");
    for e in events {
        let cell = |key: &str| match &e[key] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        writer.write_record(CSV_COLUMNS.map(cell)).expect("writing to memory");
    }
    String::from_utf8(writer.into_inner().expect("writing to memory")).expect("CSV of UTF-8 text is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events() -> Vec<Value> {
        vec![
            json!({"position": 1, "recorded_at": "2026-11-25T10:00:00.000000Z", "actor": "user:ann",
                "type": "PromptCreated", "stream_version": 1, "payload": {"name": "greeting", "description": "Says \"hi\", politely"},
                "hash": "aa", "prev_hash": "00"}),
            json!({"position": 2, "recorded_at": "2026-11-25T10:01:00.000000Z", "actor": "user:bob",
                "type": "VersionCreated", "stream_version": 2, "payload": {"text": "line one\nline two"},
                "hash": "bb", "prev_hash": "aa"}),
        ]
    }

    #[test]
    fn csv_round_trips_through_a_csv_reader() {
        let text = csv(&events());
        let mut reader = ::csv::Reader::from_reader(text.as_bytes());
        assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), CSV_COLUMNS);
        let rows: Vec<_> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][2], "user:ann");
        assert_eq!(&rows[0][3], "PromptCreated");
        // The payload survives quoting: commas, quotes and newlines included.
        let payload: Value = serde_json::from_str(&rows[0][5]).unwrap();
        assert_eq!(payload["description"], "Says \"hi\", politely");
        let payload: Value = serde_json::from_str(&rows[1][5]).unwrap();
        assert_eq!(payload["text"], "line one\nline two");
    }

    #[test]
    fn json_lines_has_one_parsable_event_per_line() {
        let text = json_lines(&events());
        let parsed: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(parsed, events());
    }
}
