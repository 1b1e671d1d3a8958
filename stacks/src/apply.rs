//! Apply: carry out a plan's changes in order (creates/updates forward, deletes in reverse dependency order),
//! recording the physical ids of what it creates for the references that follow. How each kind is created,
//! updated (only the changed fields) and deleted (tolerating "already gone") is its family's
//! ([`crate::kinds`]). Re-runnable: a partial apply leaves tagged resources that the next observation finds.

use std::collections::{BTreeMap, HashMap};

use crate::aws::Clients;
use crate::config::Config;
use crate::family::ctx::Ctx;
pub use crate::family::ctx::{ApplyOptions, Quirks, Timeouts};
use crate::kinds;
use crate::model::{Desired, Observed, ResId};
use crate::plan::{Action, Change, Plan};
use crate::Error;

/// Progress of an apply, one resource at a time (the CLI draws it).
pub trait Progress: Send + Sync {
    fn start(&self, change: &Change);
    fn finish(&self, change: &Change, outcome: Result<&str, &Error>);
    /// How a change that takes long is getting on (between `start` and `finish`).
    fn note(&self, _change: &Change, _msg: &str) {}
}

/// Progress that shows nothing.
pub struct Quiet;
impl Progress for Quiet {
    fn start(&self, _: &Change) {}
    fn finish(&self, _: &Change, _: Result<&str, &Error>) {}
}

/// Carries out changes.
pub struct Applier<'a> {
    /// What the families are given; its `live` ids are recorded here as resources are created.
    x: Ctx<'a>,
    desired: HashMap<&'a ResId, &'a Desired>,
    observed: HashMap<(ResId, String), &'a Observed>,
}

impl<'a> Applier<'a> {
    pub fn new(
        c: &'a Clients,
        cfg: &'a Config,
        desired: &'a [Desired],
        observed: &'a [Observed],
        opts: ApplyOptions,
    ) -> Self {
        let (primary, _) = crate::plan::index_observed(observed);
        let mut live: HashMap<ResId, String> = primary
            .iter()
            .map(|(k, o)| (k.clone(), o.physical.clone()))
            .collect();
        for (k, o) in &primary {
            for (a, v) in &o.aux {
                live.insert(ResId(format!("{k}#{a}")), v.clone());
            }
        }
        Applier {
            x: Ctx {
                c,
                cfg,
                opts,
                live,
                notes: None,
            },
            desired: desired.iter().map(|d| (&d.id, d)).collect(),
            observed: observed
                .iter()
                .map(|o| ((o.id.clone(), o.physical.clone()), o))
                .collect(),
        }
    }

    /// Runs every pending change of `plan` in order, reporting progress; stops at the first failure.
    pub async fn run(&mut self, plan: &Plan, progress: &dyn Progress) -> Result<(), Error> {
        let (tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
        self.x.notes = Some(tx);
        for ch in plan.pending() {
            progress.start(ch);
            let mut change = Box::pin(self.apply_change(ch));
            let r = loop {
                tokio::select! {
                    r = &mut change => break r,
                    Some(msg) = notes.recv() => progress.note(ch, &msg),
                }
            };
            drop(change);
            while let Ok(msg) = notes.try_recv() {
                progress.note(ch, &msg);
            }
            match &r {
                Ok(msg) => progress.finish(ch, Ok(msg)),
                Err(e) => progress.finish(ch, Err(e)),
            }
            r.map_err(|e| Error::Apply {
                id: ch.id.clone(),
                action: ch.action,
                source: Box::new(e),
            })?;
        }
        Ok(())
    }

    /// Carries out one change; returns the outcome message.
    async fn apply_change(&mut self, ch: &Change) -> Result<String, Error> {
        let observed = ch
            .physical
            .as_ref()
            .and_then(|p| self.observed.get(&(ch.id.clone(), p.clone())).copied());
        let observed =
            || observed.ok_or_else(|| Error::Internal(format!("{} not observed", ch.id)));
        match ch.action {
            Action::NoOp => Ok("unchanged".into()),
            Action::Create => {
                let d = self.desired_of(&ch.id)?;
                let phys = self.create_recorded(d).await?;
                Ok(format!("created {phys}"))
            }
            Action::Update => {
                let (d, o) = (self.desired_of(&ch.id)?, observed()?);
                Box::pin(self.update(d, o, ch)).await?;
                Ok(format!("updated {}", o.physical))
            }
            Action::Replace => {
                let (d, o) = (self.desired_of(&ch.id)?, observed()?);
                if kinds::creates_before_replacing(d.kind) {
                    let phys = self.create_recorded(d).await?;
                    let retired = Box::pin(kinds::retire(&self.x, o, &phys)).await?;
                    return Ok(format!("registered {phys}; {retired}"));
                }
                Box::pin(kinds::delete(&self.x, o)).await?;
                let phys = self.create_recorded(d).await?;
                Ok(format!("replaced {} with {phys}", o.physical))
            }
            Action::Delete => {
                let o = observed()?;
                let msg = Box::pin(kinds::delete(&self.x, o)).await?;
                if self.x.live.get(&ch.id) == Some(&o.physical) {
                    self.x.live.remove(&ch.id);
                }
                Ok(msg)
            }
        }
    }

    /// Creates `d` and records its physical id and attributes for the references that follow.
    async fn create_recorded(&mut self, d: &Desired) -> Result<String, Error> {
        let (phys, aux) = Box::pin(kinds::create(&self.x, d)).await?;
        self.x.live.insert(d.id.clone(), phys.clone());
        for (a, v) in aux {
            self.x.live.insert(ResId(format!("{}#{a}", d.id)), v);
        }
        Ok(phys)
    }

    fn desired_of(&self, id: &ResId) -> Result<&'a Desired, Error> {
        self.desired
            .get(id)
            .copied()
            .ok_or_else(|| Error::Internal(format!("{id} is not desired")))
    }

    /// Sets the added or changed tags first (cheap and independent), then the family updates the rest.
    async fn update(&self, d: &Desired, o: &Observed, ch: &Change) -> Result<(), Error> {
        let tags: BTreeMap<String, String> = ch
            .fields
            .iter()
            .filter_map(|fc| Some((fc.field.strip_prefix("tags.")?.to_string(), fc.new.clone()?)))
            .collect();
        if !tags.is_empty() {
            Box::pin(kinds::tag(&self.x, o, &tags)).await?;
        }
        Box::pin(kinds::update(&self.x, d, o, &ch.fields)).await
    }
}
