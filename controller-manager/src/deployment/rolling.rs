//! The arithmetic of a rollout, without IO (Kubernetes's deployment util
//! and `rolling.go`): how far maxSurge and maxUnavailable reach, how much
//! the new ReplicaSet may grow, how much old ones may shrink, and how a
//! resize during a rollout is spread over the ReplicaSets (proportional
//! scaling). Each planner returns `(ReplicaSet name, new spec.replicas)`
//! for the sets to change.

use capstan_proto::api::apps::v1::{Deployment, ReplicaSet};
use capstan_proto::intstr::IntOrString;

use super::revision::MAX_REPLICAS;

/// A planned resize: the ReplicaSet's name and its new `spec.replicas`.
pub type Resize = (String, i32);

/// `spec.replicas` of a ReplicaSet.
pub fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// `status.availableReplicas` of a ReplicaSet.
pub fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// The ReplicaSet's name.
pub fn name(rs: &ReplicaSet) -> &str {
    rs.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("")
}

fn created(rs: &ReplicaSet) -> (i64, i32, String) {
    let m = rs.metadata.as_ref();
    let t = m.and_then(|m| m.creation_timestamp);
    (
        t.map_or(0, |t| t.seconds),
        t.map_or(0, |t| t.nanos),
        name(rs).to_owned(),
    )
}

/// Sorts oldest first (creationTimestamp, then name).
pub fn sort_oldest_first(sets: &mut [&ReplicaSet]) {
    sets.sort_by_key(|rs| created(rs));
}

/// The Deployment's `spec.replicas` (default 1).
pub fn desired(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Whether the strategy is RollingUpdate (the default) rather than Recreate.
pub fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .is_none_or(|s| s.r#type != "Recreate")
}

/// An int, or a percentage of `total` rounded up or down (Kubernetes's
/// `GetScaledValueFromIntOrPercent`).
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| {
                    format!("invalid value {s:?}: must be an integer or a percentage")
                })?;
            let product = pct * i64::from(total);
            let v = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            Ok(v as i32)
        }
    }
}

/// (maxSurge, maxUnavailable) for `desired` replicas: surge rounded up,
/// unavailable down; both 0 becomes unavailable 1 so a rollout can
/// progress (Kubernetes's `ResolveFenceposts`). Unset values are 25%.
pub fn resolve_fenceposts(
    surge: Option<&IntOrString>,
    unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), String> {
    let quarter = IntOrString::String("25%".into());
    let surge = scaled_value(surge.unwrap_or(&quarter), desired, true)
        .map_err(|e| format!("maxSurge: {e}"))?;
    let mut unavailable = scaled_value(unavailable.unwrap_or(&quarter), desired, false)
        .map_err(|e| format!("maxUnavailable: {e}"))?;
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    resolve_fenceposts(
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
        desired(d),
    )
    .unwrap_or((0, 1))
}

/// How many pods above `spec.replicas` a rollout may run (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

/// How many of `spec.replicas` may be unavailable during a rollout (0 for
/// Recreate), at most `spec.replicas`.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || desired(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(desired(d))
}

/// The size the new ReplicaSet may grow to now (Kubernetes's
/// `NewRSNewReplicas`): for RollingUpdate, as far as maxSurge allows over
/// all sets' `spec.replicas`, never past `spec.replicas`; for Recreate,
/// `spec.replicas`.
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
    if !is_rolling(d) {
        return desired(d);
    }
    let current: i32 = all.iter().map(|rs| replicas(rs)).sum();
    let max_total = desired(d) + max_surge(d);
    if current >= max_total {
        return replicas(new);
    }
    let up = (max_total - current).min(desired(d) - replicas(new));
    replicas(new) + up.max(0)
}

/// The old ReplicaSets' new sizes (Kubernetes's `reconcileOldReplicaSets`):
/// first unhealthy replicas of old sets go (they cost no availability),
/// then available ones while more than `replicas - maxUnavailable` stay
/// available, oldest sets first.
pub fn reconcile_old(d: &Deployment, new: Option<&ReplicaSet>, old: &[&ReplicaSet]) -> Vec<Resize> {
    let mut sizes: Vec<(&ReplicaSet, i32)> = {
        let mut sorted = old.to_vec();
        sort_oldest_first(&mut sorted);
        sorted.into_iter().map(|rs| (rs, replicas(rs))).collect()
    };
    let old_count: i32 = sizes.iter().map(|(_, n)| n).sum();
    if old_count == 0 {
        return Vec::new();
    }
    let new_replicas = new.map_or(0, replicas);
    let all_count = old_count + new_replicas;
    let min_available = desired(d) - max_unavailable(d);
    let new_unavailable = new.map_or(0, |n| replicas(n) - available(n));
    let max_scaled_down = all_count - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }
    // Unhealthy replicas first.
    let mut cleaned = 0;
    for (rs, size) in sizes.iter_mut() {
        if cleaned >= max_scaled_down {
            break;
        }
        if *size == 0 || *size == available(rs) {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(*size - available(rs));
        *size -= down;
        cleaned += down;
    }
    // Then available ones, down to minAvailable.
    let available_count: i32 =
        sizes.iter().map(|(rs, _)| available(rs)).sum::<i32>() + new.map_or(0, available);
    if available_count > min_available {
        let total = available_count - min_available;
        let mut scaled = 0;
        for (_, size) in sizes.iter_mut() {
            if scaled >= total {
                break;
            }
            if *size == 0 {
                continue;
            }
            let down = (*size).min(total - scaled);
            *size -= down;
            scaled += down;
        }
    }
    sizes
        .into_iter()
        .filter(|(rs, size)| *size != replicas(rs))
        .map(|(rs, size)| (name(rs).to_owned(), size))
        .collect()
}

/// Spreads a change of `spec.replicas` over the active sets of a rollout
/// in proportion to their sizes (Kubernetes's proportional scaling): the
/// total may reach `replicas + maxSurge`; what rounding leaves goes to the
/// largest set. `status_replicas` is the Deployment's `status.replicas`
/// (used when a set lacks the max-replicas annotation).
pub fn proportional(d: &Deployment, active: &[&ReplicaSet], status_replicas: i32) -> Vec<Resize> {
    let total: i32 = active.iter().map(|rs| replicas(rs)).sum();
    let allowed = if desired(d) > 0 {
        desired(d) + max_surge(d)
    } else {
        0
    };
    let to_add = allowed - total;
    let mut sets = active.to_vec();
    // Largest first; ties: newer first when adding, older first when removing.
    sets.sort_by(|a, b| {
        replicas(b).cmp(&replicas(a)).then_with(|| {
            if to_add > 0 {
                created(b).cmp(&created(a))
            } else {
                created(a).cmp(&created(b))
            }
        })
    });
    let mut sizes: Vec<i32> = sets.iter().map(|rs| replicas(rs)).collect();
    if to_add != 0 {
        let mut added = 0;
        for (i, rs) in sets.iter().enumerate() {
            let p = proportion(d, rs, to_add, added, status_replicas);
            sizes[i] += p;
            added += p;
        }
        if let Some(first) = sizes.first_mut() {
            *first = (*first + to_add - added).max(0);
        }
    }
    sets.iter()
        .zip(sizes)
        .filter(|(rs, size)| *size != replicas(rs))
        .map(|(rs, size)| (name(rs).to_owned(), size))
        .collect()
}

fn proportion(
    d: &Deployment,
    rs: &ReplicaSet,
    to_add: i32,
    added: i32,
    status_replicas: i32,
) -> i32 {
    if replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if desired(d) == 0 {
        -replicas(rs)
    } else {
        let deployment_replicas = desired(d) + max_surge(d);
        let annotated = rs
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.get(MAX_REPLICAS))
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(status_replicas);
        if annotated <= 0 {
            0
        } else {
            let size =
                f64::from(replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
            size.round() as i32 - replicas(rs)
        }
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

#[cfg(test)]
mod tests;
