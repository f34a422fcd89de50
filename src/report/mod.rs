//! Reports of a run: the summary (summary.json), the conservation checks that guard it,
//! and the terminal table. Serde lives here, at the edge; the simulator's types stay plain.

pub mod html;
pub mod summary;
pub mod table;

pub use summary::{ScenarioSummary, VariantSummary};
