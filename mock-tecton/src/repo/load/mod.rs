//! Validating a repository: the raw shape [`super::read`] gives, checked field by field into a
//! [`Repository`], every mistake reported with its position ([`Diag`]). Sources and views, the
//! two kinds with most rules, have their own modules.

use std::collections::{HashMap, HashSet};

use super::diag::{Diag, RepoErrors};
use super::model::{
    Entity, FeatureService, FeatureView, Repository, ServedView, ServiceAccount, Workspace,
};
use super::raw::RawRepo;
use crate::schema::DataType;

mod sources;
mod views;

pub(super) fn load(text: &str, origin: &str) -> Result<Repository, RepoErrors> {
    let mut d = Diag::new(text, origin);
    let repo = super::read::read(text, &mut d).map(|raw| validate(raw, &mut d));
    d.finish()?;
    // `read` gives nothing only after reporting why, so `finish` has returned the errors.
    repo.ok_or_else(|| RepoErrors(Vec::new()))
}

fn validate(raw: RawRepo, d: &mut Diag<'_>) -> Repository {
    d.unique(
        raw.workspaces
            .iter()
            .enumerate()
            .map(|(i, w)| (&w.name, format!("workspaces[{i}].name"))),
        "workspace",
    );
    let workspaces: Vec<Workspace> = raw
        .workspaces
        .iter()
        .map(|w| Workspace {
            name: w.name.get_ref().clone(),
            live: w.live,
        })
        .collect();
    if workspaces.is_empty() {
        d.at_opt(
            None,
            "workspaces",
            "declare at least one [[workspaces]] entry",
        );
    }

    let service_accounts = accounts(&raw, &workspaces, d);
    let entities = entities(&raw, d);
    let push_sources = sources::push_sources(&raw, d);
    let stream_sources = sources::stream_sources(&raw, &push_sources, d);
    let feature_views = views::views(&raw, &entities, &push_sources, &stream_sources, d);
    let feature_services = services(&raw, &feature_views, d);
    let batch_sources =
        super::batch::sources(&raw, &push_sources, &stream_sources, &feature_views, d);
    Repository {
        batch_sources,
        workspaces,
        service_accounts,
        entities,
        push_sources,
        stream_sources,
        feature_views,
        feature_services,
    }
}

fn accounts(raw: &RawRepo, workspaces: &[Workspace], d: &mut Diag<'_>) -> Vec<ServiceAccount> {
    let list = &raw.service_accounts;
    d.unique(
        list.iter()
            .enumerate()
            .map(|(i, a)| (&a.name, format!("service_accounts[{i}].name"))),
        "service account",
    );
    let mut keys = HashSet::new();
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        if a.api_key.get_ref().trim().is_empty()
            || a.api_key.get_ref().contains(char::is_whitespace)
        {
            d.at(
                a.api_key.span(),
                format!("service_accounts[{i}].api_key"),
                "must be non-empty without spaces",
            );
        } else if !keys.insert(a.api_key.get_ref().clone()) {
            d.at(
                a.api_key.span(),
                format!("service_accounts[{i}].api_key"),
                "this key belongs to another service account too",
            );
        }
        let mut roles = HashMap::new();
        for (ws, r) in &a.roles {
            if !workspaces.iter().any(|w| &w.name == ws) {
                d.at(
                    r.span(),
                    format!("service_accounts[{i}].roles.{ws}"),
                    format!("no workspace named `{ws}`"),
                );
            }
            roles.insert(ws.clone(), r.get_ref().clone());
        }
        out.push(ServiceAccount {
            name: a.name.get_ref().clone(),
            api_key: a.api_key.get_ref().clone(),
            roles,
        });
    }
    out
}

fn entities(raw: &RawRepo, d: &mut Diag<'_>) -> Vec<Entity> {
    d.unique(
        raw.entities
            .iter()
            .enumerate()
            .map(|(i, e)| (&e.name, format!("entities[{i}].name"))),
        "entity",
    );
    let mut out = Vec::new();
    for (i, e) in raw.entities.iter().enumerate() {
        if e.join_keys.is_empty() {
            d.at(
                e.name.span(),
                format!("entities[{i}].join_keys"),
                "an entity needs at least one join key",
            );
        }
        let mut keys = Vec::new();
        for (k, f) in e.join_keys.iter().enumerate() {
            let field = format!("entities[{i}].join_keys[{k}].type");
            if let Some(t) = sources::parse_type(d, f, field.clone()) {
                if !matches!(t, DataType::String | DataType::Int64 | DataType::Int32) {
                    d.at(
                        f.ty.span(),
                        field,
                        format!("join keys must be String, Int64 or Int32, not {t}"),
                    );
                }
                keys.push((f.name.get_ref().clone(), t));
            }
        }
        out.push(Entity {
            name: e.name.get_ref().clone(),
            join_keys: keys,
        });
    }
    out
}

fn services(raw: &RawRepo, views: &[FeatureView], d: &mut Diag<'_>) -> Vec<FeatureService> {
    d.unique(
        raw.feature_services
            .iter()
            .enumerate()
            .map(|(i, s)| (&s.name, format!("feature_services[{i}].name"))),
        "feature service",
    );
    let mut out = Vec::new();
    for (i, s) in raw.feature_services.iter().enumerate() {
        let mut served: Vec<ServedView> = Vec::new();
        for (k, f) in s.features.iter().enumerate() {
            let field = format!("feature_services[{i}].features[{k}]");
            let (view_name, feature) = match f.get_ref().split_once('.') {
                Some((v, feat)) => (v, Some(feat)),
                None => (f.get_ref().as_str(), None),
            };
            let Some(view) = views.iter().find(|v| v.name == view_name) else {
                if !d.broken.contains(view_name) && !d.broken.contains("feature_views[*]") {
                    d.at(
                        f.span(),
                        field,
                        format!("no feature view named `{view_name}`"),
                    );
                }
                continue;
            };
            let all: Vec<String> = view.features().into_iter().map(|(n, _)| n).collect();
            let selected = match feature {
                None => all,
                Some(feat) if all.iter().any(|n| n == feat) => vec![feat.to_owned()],
                Some(feat) => {
                    if !d.broken.contains(view_name) {
                        d.at(
                            f.span(),
                            field,
                            format!("feature view `{view_name}` has no feature `{feat}`"),
                        );
                    }
                    continue;
                }
            };
            match served.iter_mut().find(|sv| sv.view == view.name) {
                Some(sv) => sv.features.extend(selected),
                None => served.push(ServedView {
                    view: view.name.clone(),
                    features: selected,
                }),
            }
        }
        // Tecton serves views alphabetically and features alphabetically within a view.
        served.sort_by(|a, b| a.view.cmp(&b.view));
        for sv in &mut served {
            sv.features.sort();
            sv.features.dedup();
        }
        out.push(FeatureService {
            name: s.name.get_ref().clone(),
            views: served,
        });
    }
    out
}

/// A stable 32-hex-digit id from a name (two FNV-1a passes with different bases).
pub(crate) fn object_id(name: &str) -> String {
    let fnv = |basis: u64| {
        name.bytes().fold(basis, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}
