//! The Environments page's matrix of prompts × environments, built from what the server
//! answers: `GET /environments`, the prompts' names (`GET /prompts/`) and, for each
//! environment, `GET /deployed/?environment=<env>`. Plain functions, tested without a
//! browser.

use serde_json::Value;

/// An environment at the head of a column, with the rules for changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub name: String,
    /// Only admins may deploy to it or roll it back.
    pub protected: bool,
    /// Where changes go through change requests: the approvals each one needs.
    pub approvals_required: Option<u64>,
}

impl Environment {
    /// The environments of a `GET /environments` answer, in the server's order.
    pub fn list(answer: &Value) -> Vec<Environment> {
        let items = answer["items"].as_array().map(Vec::as_slice).unwrap_or_default();
        items
            .iter()
            .map(|e| Environment {
                name: e["name"].as_str().unwrap_or_default().to_owned(),
                protected: e["protected"] == true,
                approvals_required: e["approvals_required"].as_u64(),
            })
            .filter(|e| !e.name.is_empty())
            .collect()
    }

    /// Who may change it, and how, in one sentence.
    pub fn policy(&self) -> String {
        let approvals = self.approvals_required.map(|n| {
            let s = if n == 1 { "" } else { "s" };
            format!("changes need a change request approved by {n} admin{s}")
        });
        match (self.protected, approvals) {
            (true, Some(a)) => format!("Protected: {a}."),
            (true, None) => "Protected: only admins deploy or roll back.".to_owned(),
            (false, Some(a)) => format!("{}{}.", a[..1].to_uppercase(), &a[1..]),
            (false, None) => "Editors and admins deploy directly.".to_owned(),
        }
    }
}

/// What one prompt serves in one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    NotDeployed,
    /// One version serves everyone.
    Version(String),
    /// An A/B test splits the traffic: each variant with its share, e.g.
    /// `v1 50 % · v2 50 %`.
    Split(String),
}

impl Cell {
    /// The cell for one item of a `GET /deployed/` answer.
    pub fn of(deployed: &Value) -> Cell {
        let variants = &deployed["experiment"]["variants"];
        if variants.as_array().is_some_and(|v| !v.is_empty()) {
            return Cell::Split(crate::split_summary(variants));
        }
        match deployed["version_string"].as_str() {
            Some(v) if !v.is_empty() => Cell::Version(v.to_owned()),
            _ => Cell::NotDeployed,
        }
    }

    /// The cell as text (what a screen reader or a copied table holds).
    pub fn text(&self) -> String {
        match self {
            Cell::NotDeployed => "—".to_owned(),
            Cell::Version(v) => v.clone(),
            Cell::Split(s) => s.clone(),
        }
    }
}

/// A prompt's row: one cell per environment, in the columns' order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub prompt: String,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Matrix {
    pub environments: Vec<Environment>,
    pub rows: Vec<Row>,
}

impl Matrix {
    /// Rows for every prompt named in `prompts` and every prompt deployed somewhere
    /// (sorted by name); `deployed` holds each environment's name and its
    /// `GET /deployed/?environment=` answer. A column whose answer is missing shows its
    /// prompts as not deployed.
    pub fn build(environments: Vec<Environment>, prompts: &[String], deployed: &[(String, Value)]) -> Matrix {
        let items = |env: &str| -> Vec<&Value> {
            deployed
                .iter()
                .filter(|(e, _)| e == env)
                .flat_map(|(_, answer)| answer["items"].as_array().into_iter().flatten())
                .collect()
        };
        let mut names: Vec<String> = prompts.to_vec();
        for (_, answer) in deployed {
            for item in answer["items"].as_array().into_iter().flatten() {
                if let Some(name) = item["prompt_name"].as_str() {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        names.dedup();
        let columns: Vec<Vec<&Value>> = environments.iter().map(|e| items(&e.name)).collect();
        let rows = names
            .into_iter()
            .map(|prompt| {
                let cells = columns
                    .iter()
                    .map(|column| {
                        column
                            .iter()
                            .find(|d| d["prompt_name"] == prompt.as_str())
                            .map_or(Cell::NotDeployed, |d| Cell::of(d))
                    })
                    .collect();
                Row { prompt, cells }
            })
            .collect();
        Matrix { environments, rows }
    }

    /// "2 prompts, 3 environments; 3 of 6 cells live, 1 of them an A/B test."
    pub fn summary(&self) -> String {
        let cells: Vec<&Cell> = self.rows.iter().flat_map(|r| &r.cells).collect();
        let live = cells.iter().filter(|c| **c != &Cell::NotDeployed).count();
        let splits = cells.iter().filter(|c| matches!(c, Cell::Split(_))).count();
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut line = format!(
            "{}, {}; {live} of {} cells live",
            plural(self.rows.len(), "prompt", "prompts"),
            plural(self.environments.len(), "environment", "environments"),
            cells.len()
        );
        if splits > 0 {
            line.push_str(&format!(", {} of them {}", splits, if splits == 1 { "an A/B test" } else { "A/B tests" }));
        }
        line.push('.');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn environments() -> Vec<Environment> {
        Environment::list(&json!({"items": [
            {"name": "staging", "protected": false, "approvals_required": null},
            {"name": "production", "protected": true, "approvals_required": 1},
        ]}))
    }

    #[test]
    fn each_environment_says_who_may_change_it() {
        let [staging, production] = <[Environment; 2]>::try_from(environments()).unwrap();
        assert_eq!(staging.policy(), "Editors and admins deploy directly.");
        assert_eq!(production.policy(), "Protected: changes need a change request approved by 1 admin.");
        let eu = Environment { name: "eu".into(), protected: false, approvals_required: Some(2) };
        assert_eq!(eu.policy(), "Changes need a change request approved by 2 admins.");
        let locked = Environment { name: "system".into(), protected: true, approvals_required: None };
        assert_eq!(locked.policy(), "Protected: only admins deploy or roll back.");
    }

    #[test]
    fn cells_show_the_live_version_or_the_split_of_a_running_test() {
        let split = json!({"prompt_name": "checkout", "version_string": "v1",
            "experiment": {"variants": [{"version_string": "v1", "weight": 50}, {"version_string": "v2", "weight": 50}]}});
        assert_eq!(Cell::of(&split), Cell::Split("v1 50 % · v2 50 %".into()));
        assert_eq!(Cell::of(&json!({"version_string": "v3"})), Cell::Version("v3".into()));
        assert_eq!(Cell::of(&json!({})), Cell::NotDeployed);
        assert_eq!(Cell::NotDeployed.text(), "—");
    }

    #[test]
    fn the_matrix_has_a_row_per_prompt_and_a_cell_per_environment() {
        let deployed = vec![
            (
                "staging".to_owned(),
                json!({"items": [
                    {"prompt_name": "greeting", "version_string": "v2"},
                    {"prompt_name": "checkout", "version_string": "v1", "experiment": {"variants": [
                        {"version_string": "v1", "weight": 70}, {"version_string": "v2", "weight": 30}]}},
                ]}),
            ),
            ("production".to_owned(), json!({"items": [{"prompt_name": "greeting", "version_string": "v1"}]})),
        ];
        // "orphan" is deployed but missing from the (truncated) list of names.
        let names = ["greeting".to_owned(), "checkout".to_owned(), "draft".to_owned()];
        let matrix = Matrix::build(environments(), &names, &deployed);
        assert_eq!(matrix.environments.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["staging", "production"]);
        let rows: Vec<(&str, Vec<String>)> =
            matrix.rows.iter().map(|r| (r.prompt.as_str(), r.cells.iter().map(Cell::text).collect())).collect();
        assert_eq!(
            rows,
            [
                ("checkout", vec!["v1 70 % · v2 30 %".to_owned(), "—".to_owned()]),
                ("draft", vec!["—".to_owned(), "—".to_owned()]),
                ("greeting", vec!["v2".to_owned(), "v1".to_owned()]),
            ]
        );
        assert_eq!(matrix.summary(), "3 prompts, 2 environments; 3 of 6 cells live, 1 of them an A/B test.");
    }

    #[test]
    fn a_prompt_deployed_but_not_listed_still_gets_its_row() {
        let deployed =
            vec![("staging".to_owned(), json!({"items": [{"prompt_name": "orphan", "version_string": "v9"}]}))];
        let matrix = Matrix::build(environments(), &[], &deployed);
        assert_eq!(
            matrix.rows,
            [Row { prompt: "orphan".into(), cells: vec![Cell::Version("v9".into()), Cell::NotDeployed] }]
        );
        assert_eq!(Matrix::default().summary(), "0 prompts, 0 environments; 0 of 0 cells live.");
    }
}
