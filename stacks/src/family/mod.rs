//! The contract of a family of resource kinds (one module under [`crate::kinds`] each): how it observes what
//! exists, which of its fields cannot change in place, and how it creates, updates (sending only the changed
//! fields), tags and deletes (tolerating "already gone") a resource. The engine (observe, diff, apply) is
//! generic over it and dispatches through a fixed enum of families ([`crate::kinds::Fam`]).
//!
//! Submodules: [`build`] (desired state), [`found`] (observation), [`ctx`] (apply).

pub mod build;
pub mod ctx;
pub mod found;

use std::collections::BTreeMap;

use crate::aws::Clients;
use crate::config::Config;
use crate::model::{Desired, FieldChange, Kind, Observed};
use crate::Error;
use ctx::Ctx;

/// What a create returns: the physical id, and the attributes other resources refer to (`id#attr`).
pub type Created = (String, BTreeMap<String, String>);

/// The error for a kind dispatched to a family that does not own it (`family` with its article: "a network").
pub fn not_ours(kind: Kind, family: &str) -> Error {
    Error::Internal(format!("{kind} is not {family} kind"))
}

/// The resources of a family. Every method gets the kind it acts on in the `Desired`/`Observed` it is given.
pub(crate) trait Family {
    /// Observation of a family whose resources belong to an owned resource of this kind (they have no tags of
    /// their own) waits for that kind's and is skipped when there is none.
    const PARENT: Option<Kind> = None;

    /// Whether a change of `field` replaces a resource of `kind`.
    fn replaces(kind: Kind, field: &str) -> bool;

    /// Whether a replacement of `kind` creates the new resource before the old one is retired
    /// ([`Family::retire`]), rather than deleting first.
    fn creates_before_replacing(_kind: Kind) -> bool {
        false
    }

    /// Every owned resource of the family. `desired` names what is found by name.
    async fn observe(
        c: &Clients,
        cfg: &Config,
        desired: &[Desired],
    ) -> Result<Vec<Observed>, Error>;

    /// Creates a resource.
    async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error>;

    /// Applies the changed `fields` (tags excepted: see [`Family::tag`]).
    async fn update(
        x: &Ctx<'_>,
        d: &Desired,
        o: &Observed,
        fields: &[FieldChange],
    ) -> Result<(), Error>;

    /// Sets tags (added or changed ones).
    async fn tag(x: &Ctx<'_>, o: &Observed, tags: &BTreeMap<String, String>) -> Result<(), Error>;

    /// Deletes a resource; "already gone" is success. Returns the outcome message.
    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error>;

    /// After a create-first replacement ([`Family::creates_before_replacing`]): retires `o`, superseded by
    /// `new`. Returns the outcome message.
    async fn retire(x: &Ctx<'_>, o: &Observed, _new: &str) -> Result<String, Error> {
        Self::delete(x, o).await
    }
}
