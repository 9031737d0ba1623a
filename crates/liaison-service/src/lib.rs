//! # liaison-service
//!
//! Every use case of a Liaison node, in one place: who may do what, what is written, and what
//! goes out to peers. The command line (`liaison-cli`), the HTTP API and the web UI
//! (`liaison-server`) parse, call a use case on [`Node`] and render; they decide nothing.
//!
//! Architecture invariants:
//! - only this crate holds a `liaison_store::Store`, and it re-exports no store type: the CLI
//!   and the server cannot reach the database except through a use case;
//! - every use case takes the acting [`Principal`] and checks its role and agency before
//!   anything is read or written;
//! - a state change and the federation messages it causes commit in one transaction.
//!
//! Rooms (one file per area): [`requests`], [`directory`], [`admin`] (users and tokens),
//! [`reports`], [`cases`] (joint task-force cases), [`assess`], [`evidence`] (evidence files, custody, retention), [`intel`] (network clean-up), [`federation`] (identity and key
//! rotation, peers, ledger, inbound apply, outgoing mirroring, delivery), [`setup`] (creating a
//! node), [`fixtures`] (demo, benchmark and test data).

pub mod admin;
pub mod approval;
pub mod assess;
pub mod backup;
pub mod cases;
pub mod deliver;
pub mod directory;
pub mod error;
pub mod evidence;
pub mod evidence_package;
pub mod experience;
pub mod federation;
pub mod fixtures;
pub mod instances;
pub mod intel;
pub mod intel_export;
pub mod intel_ingest;
pub mod intel_pull;
pub mod legal;
pub mod letter;
pub mod markings;
pub mod node;
pub mod notices;
pub mod notify;
pub mod report;
pub mod reports;
pub mod requests;
pub mod search;
pub mod setup;
pub mod sign_in;
mod sign_in_seal;
pub mod taxii;
pub mod work;

pub use directory::{AgencyNames, AgencyView, ContactView};
pub use error::{Result, ServiceError};
pub use liaison_core::record::*;
pub use node::Node;
pub use reports::{CooperationReport, GroupBy};
