//! The report's figures, from the [`Report`] alone: what each one shows, with which labels and
//! colours (a model or a clone keeps its colour in every figure). Drawing is `report::plot`'s.
//! A figure whose data the report lacks is left out (rotation accuracies, per-layer
//! equivariance before and after fine-tuning, clonability bounds, feature maps).

use super::types::{CloneReport, FeatureMaps, ModelReport, Report};
use crate::models::ModelKind;
use crate::report::doc::FigureBlock;
use crate::report::maps::{self, Map, MapGrid};
use crate::report::plot::{Bar, BarSeries, Bars, Figure, HLine, Lines, Panel, Series};
use crate::Result;

/// A model's colour: its place in [`ModelKind::ALL`].
pub fn model_colour(m: ModelKind) -> usize {
    ModelKind::ALL.iter().position(|&k| k == m).unwrap_or(0)
}

/// Tasks in the order the report first names them.
fn tasks(r: &Report) -> Vec<String> {
    let mut t: Vec<String> = Vec::new();
    for m in &r.results {
        if !t.contains(&m.task) {
            t.push(m.task.clone());
        }
    }
    t
}

/// Every figure the report has data for, rendered.
pub fn render(r: &Report) -> Result<Vec<FigureBlock>> {
    let mut out = Vec::new();
    let figs = [
        clone_loss(r),
        training(r),
        accuracy(r),
        rotation_accuracy(r),
        equivariance(r),
    ];
    for f in figs.into_iter().flatten() {
        out.push(FigureBlock {
            file: format!("{}.svg", f.name),
            title: f.title.clone(),
            caption: f.caption.clone(),
            svg: crate::report::render::svg(&f)?,
        });
    }
    if let Some(g) = r
        .fidelity
        .as_ref()
        .and_then(|f| f.maps.as_ref())
        .map(feature_maps)
    {
        out.push(FigureBlock {
            file: format!("{}.svg", g.name),
            title: g.title.clone(),
            caption: g.caption.clone(),
            svg: maps::map_grid_svg(&g)?,
        });
    }
    Ok(out)
}

/// Cloning loss per clone against the iteration, log scale, relative to the targets' mean
/// square where every clone has it (so clones of different sizes share the axis), with each
/// clone's clonability bound where the report has one.
pub fn clone_loss(r: &Report) -> Option<Figure> {
    if r.clones.is_empty() {
        return None;
    }
    let relative = r.clones.iter().all(|c| c.stats.target_mean_square > 0.0);
    let name = |c: &CloneReport| format!("{} {} ({})", c.kind.name(), c.d, c.source);
    let series = r
        .clones
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let scale = if relative {
                1.0 / c.stats.target_mean_square as f64
            } else {
                1.0
            };
            Series {
                label: name(c),
                colour: i,
                points: c
                    .stats
                    .history
                    .iter()
                    .map(|&(it, l)| (it as f64, l as f64 * scale))
                    .collect(),
                dashed: false,
            }
        })
        .collect();
    let hlines: Vec<HLine> = r
        .clones
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let b = c.clonability_bound.filter(|&b| b > 0.0 && relative)?;
            Some(HLine {
                label: format!("bound, {} {}", c.kind.name(), c.d),
                colour: i,
                y: b,
            })
        })
        .collect();
    let bounds = r.clones.iter().any(|c| c.clonability_bound.is_some());
    let caption = format!(
        "Cloning loss of each clone against the iteration (log scale){}.{}",
        if relative {
            ": MSE divided by the mean square of the true layer's output, so 1 is what an all-zero clone scores"
        } else {
            ""
        },
        if bounds {
            " Dashed: the clonability bound (the lowest relative MSE any student with this many blocks can reach); a bound of 0 cannot be drawn on a log axis."
        } else {
            ""
        }
    );
    Some(Figure::new(
        "clone-loss",
        "Cloning loss",
        &caption,
        vec![Panel::Lines(Lines {
            title: "loss per clone".into(),
            x_label: "iteration".into(),
            y_label: if relative {
                "relative MSE".into()
            } else {
                "MSE".into()
            },
            log_y: true,
            series,
            hlines,
            ..Default::default()
        })],
    ))
}

/// Training loss and training accuracy per epoch (first seed), one row per task, one line per
/// model.
pub fn training(r: &Report) -> Option<Figure> {
    let tasks = tasks(r);
    if tasks.is_empty() || r.results.iter().all(|m| m.history.is_empty()) {
        return None;
    }
    let mut panels = Vec::new();
    for t in &tasks {
        let models: Vec<&ModelReport> = r.results.iter().filter(|m| &m.task == t).collect();
        let curve = |m: &ModelReport, f: &dyn Fn(&crate::train::EpochLog) -> f64| Series {
            label: m.model.to_string(),
            colour: model_colour(m.model),
            points: m.history.iter().map(|e| (e.epoch as f64, f(e))).collect(),
            dashed: false,
        };
        panels.push(Panel::Lines(Lines {
            title: format!("{t}: training loss"),
            x_label: "epoch".into(),
            y_label: "cross-entropy (nats, epoch mean)".into(),
            series: models
                .iter()
                .map(|m| curve(m, &|e| e.loss as f64))
                .collect(),
            ..Default::default()
        }));
        panels.push(Panel::Lines(Lines {
            title: format!("{t}: training accuracy"),
            x_label: "epoch".into(),
            y_label: "training accuracy (%)".into(),
            y_range: Some((0.0, 100.0)),
            series: models
                .iter()
                .map(|m| curve(m, &|e| 100.0 * e.train_acc as f64))
                .collect(),
            ..Default::default()
        }));
    }
    Some(Figure::new(
        "training",
        "Training per epoch",
        "Training loss and training accuracy per epoch (first seed), one row per task, one line per model. The loss is the classification loss alone (for the -kl models without the KL penalty). Test accuracy is measured once, after the last epoch: see the test accuracy figure.",
        panels,
    ))
}

/// Test accuracy per (task, model): the mean over the seeds, ± one standard deviation, and each
/// seed as a dot when there are several.
pub fn accuracy(r: &Report) -> Option<Figure> {
    let tasks = tasks(r);
    if tasks.is_empty() {
        return None;
    }
    let mut models: Vec<ModelKind> = Vec::new();
    for m in &r.results {
        if !models.contains(&m.model) {
            models.push(m.model);
        }
    }
    let series = models
        .iter()
        .map(|&k| BarSeries {
            label: k.to_string(),
            colour: model_colour(k),
            bars: tasks
                .iter()
                .map(|t| {
                    let m = r.results.iter().find(|m| &m.task == t && m.model == k)?;
                    let (mean, std) = (100.0 * m.mean as f64, 100.0 * m.std as f64);
                    Some(Bar {
                        value: mean,
                        err: Some((mean - std, mean + std)),
                        points: m.test_acc.iter().map(|&a| 100.0 * a as f64).collect(),
                    })
                })
                .collect(),
        })
        .collect();
    let mut f = Figure::new(
        "accuracy",
        "Test accuracy",
        &format!(
            "Test accuracy per task and model: mean over {} seed{}, error bars ± one standard deviation{}.",
            r.config.seeds,
            if r.config.seeds == 1 { "" } else { "s" },
            if r.config.seeds > 1 {
                ", dots: the seeds"
            } else {
                " (0 with one seed)"
            }
        ),
        vec![Panel::Bars(Bars {
            title: "test accuracy".into(),
            x_label: "task".into(),
            y_label: "test accuracy (%)".into(),
            y_range: Some((0.0, 100.0)),
            groups: tasks,
            series,
            ..Default::default()
        })],
    );
    f.panel_w = 960;
    Some(f)
}

/// Test accuracy per test rotation for every model that has it, one panel per task; None when
/// no model has it.
pub fn rotation_accuracy(r: &Report) -> Option<Figure> {
    let mut panels = Vec::new();
    for t in tasks(r) {
        let models: Vec<&ModelReport> = r
            .results
            .iter()
            .filter(|m| m.task == t && m.accuracy_by_rotation.is_some())
            .collect();
        if models.is_empty() {
            continue;
        }
        panels.push(Panel::Bars(Bars {
            title: format!("{t}: accuracy per test rotation"),
            x_label: "rotation of the test digits".into(),
            y_label: "test accuracy (%)".into(),
            y_range: Some((0.0, 100.0)),
            groups: (0..models[0].accuracy_by_rotation.as_ref().map_or(4, Vec::len))
                .map(|k| crate::group::element_name(k).to_string())
                .collect(),
            series: models
                .iter()
                .map(|m| BarSeries {
                    label: m.model.to_string(),
                    colour: model_colour(m.model),
                    bars: m
                        .accuracy_by_rotation
                        .iter()
                        .flatten()
                        .map(|&a| {
                            Some(Bar {
                                value: 100.0 * a as f64,
                                ..Default::default()
                            })
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        }));
    }
    if panels.is_empty() {
        return None;
    }
    Some(Figure::new(
        "rotation-accuracy",
        "Accuracy per test rotation",
        "Test accuracy on the test digits turned by 0°, 90°, 180° and 270° (on the D4 tasks, also each of those with the rows flipped), mean over the seeds, one panel per task: an invariant model scores the same on every one.",
        panels,
    ))
}

/// Per-layer equivariance error (log scale): each clone beside the true layer it clones, and
/// each network's feature layers before and after fine-tuning where the report has them.
pub fn equivariance(r: &Report) -> Option<Figure> {
    let mut panels = Vec::new();
    if !r.clones.is_empty() {
        let groups: Vec<String> = r
            .clones
            .iter()
            .map(|c| format!("{} {}", c.kind.name(), c.d))
            .collect();
        let bar = |v: f64| {
            Some(Bar {
                value: v,
                ..Default::default()
            })
        };
        panels.push(Panel::Bars(Bars {
            title: "clones and the true layers".into(),
            x_label: "layer (kind, input side)".into(),
            y_label: "relative equivariance error".into(),
            log_y: true,
            groups,
            series: vec![
                BarSeries {
                    label: "true layer".into(),
                    colour: 6,
                    bars: r.clones.iter().map(|c| bar(c.equivariance_true)).collect(),
                },
                BarSeries {
                    label: "clone".into(),
                    colour: 0,
                    bars: r.clones.iter().map(|c| bar(c.equivariance_clone)).collect(),
                },
            ],
            ..Default::default()
        }));
    }
    for m in &r.results {
        let Some(layers) = &m.layer_equivariance else {
            continue;
        };
        let mut series = Vec::new();
        if layers.iter().any(|l| l.before.is_some()) {
            series.push(BarSeries {
                label: "before fine-tuning".into(),
                colour: 5,
                bars: layers
                    .iter()
                    .map(|l| {
                        l.before.map(|v| Bar {
                            value: v,
                            ..Default::default()
                        })
                    })
                    .collect(),
            });
        }
        series.push(BarSeries {
            label: "after fine-tuning".into(),
            colour: 3,
            bars: layers
                .iter()
                .map(|l| {
                    Some(Bar {
                        value: l.after,
                        ..Default::default()
                    })
                })
                .collect(),
        });
        panels.push(Panel::Bars(Bars {
            title: format!("{} on {}", m.model, m.task),
            x_label: "feature layer".into(),
            y_label: "relative equivariance error".into(),
            log_y: true,
            groups: layers.iter().map(|l| l.layer.clone()).collect(),
            series,
            ..Default::default()
        }));
    }
    if panels.is_empty() {
        return None;
    }
    Some(Figure::new(
        "equivariance",
        "Equivariance error per layer",
        "Relative equivariance error ‖Φ(g·x) − g·Φ(x)‖ / ‖Φ(x)‖, averaged over the group (C4 for the lift and P4 clones and for every network's layers on the rotation tasks; shifts for the Z2 clones and on trans-sb), log scale: each cloned layer beside the true layer it clones (whose error is float rounding), and where measured each network's feature layers before and after fine-tuning.",
        panels,
    ))
}

/// The true and the cloned lift layer's four output planes, for a digit and for the digit turned
/// by 90°, on one colour scale.
pub fn feature_maps(f: &FeatureMaps) -> MapGrid {
    let o = f.side.saturating_sub(2);
    let planes = f
        .true_planes
        .iter()
        .chain(&f.clone_planes)
        .flatten()
        .flatten();
    let (lo, hi) = planes.fold((f32::MAX, f32::MIN), |a, &v| (a.0.min(v), a.1.max(v)));
    let feature = |v: &Vec<f32>| {
        Some(Map {
            side: o,
            values: v.clone(),
            range: (lo, hi),
            grey: false,
        })
    };
    let input = |v: &Vec<f32>| {
        Some(Map {
            side: f.side,
            values: v.clone(),
            range: (0.0, 1.0),
            grey: true,
        })
    };
    let mut cells = Vec::new();
    let mut row_labels = Vec::new();
    for (i, what) in ["digit", "digit turned 90°"].iter().enumerate() {
        let (Some(x), Some(t), Some(c)) =
            (f.inputs.get(i), f.true_planes.get(i), f.clone_planes.get(i))
        else {
            continue;
        };
        let mut row = vec![input(x)];
        row.extend(t.iter().map(feature));
        cells.push(row);
        row_labels.push(format!("{what}:\ntrue lift layer"));
        let mut row = vec![None];
        row.extend(c.iter().map(feature));
        cells.push(row);
        row_labels.push(format!("{what}:\ncloned lift layer"));
    }
    MapGrid {
        name: "feature-maps".into(),
        title: "Feature maps of the lift layer, true and cloned".into(),
        caption: "The input digit (grey) and the four rotation planes r = 0…3 of the lift layer's output, true and cloned, for a digit and for the digit turned by 90°, all on one colour scale. Turning the input turns every plane by 90° and moves plane r to r + 1 (SPEC §1): the lower pair is the upper pair turned and shifted one column right. The filter is the fidelity check's.".into(),
        col_labels: ["input", "r = 0", "r = 1", "r = 2", "r = 3"]
            .map(String::from)
            .to_vec(),
        row_labels,
        cells,
        cell_px: (10 * o).clamp(120, 160),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clone::{CloneStats, OperatorKind};
    use crate::config::RunConfig;
    use crate::results::types::LayerEquivariance;
    use crate::train::EpochLog;

    /// A report as a run writes it, made up: two models on one task, one clone.
    fn synthetic() -> Report {
        let model = |model: ModelKind, acc: f32| ModelReport {
            task: "symmetric".into(),
            model,
            test_acc: vec![acc, acc + 0.02],
            mean: acc + 0.01,
            std: 0.014,
            train_seconds: 1.0,
            trainable_params: 10,
            clones_unchanged: None,
            history: (1..=3)
                .map(|e| EpochLog {
                    epoch: e,
                    loss: 2.0 / e as f32,
                    penalty: None,
                    train_acc: 0.3 * e as f32,
                    seconds: 1.0,
                })
                .collect(),
            accuracy_by_rotation: None,
            layer_equivariance: None,
            orbit_group: None,
            orbit_consistency: None,
            invariance_error: None,
            kl_terms: None,
            peak_bytes: 0,
            step_flops: 0,
            step_counts: None,
            eval_counts: None,
            test_samples: 0,
        };
        Report {
            version: "0".into(),
            adapter: "made up".into(),
            data: "none".into(),
            config: RunConfig::preset("quick").unwrap(),
            config_hash: "0".into(),
            clones: vec![CloneReport {
                kind: OperatorKind::P4,
                d: 6,
                source: "random".into(),
                attempts: 1,
                stats: CloneStats {
                    history: vec![(0, 1.0), (10, 0.1), (20, 0.01)],
                    best_loss: 0.01,
                    final_loss: 0.01,
                    target_mean_square: 2.0,
                    seconds: 1.0,
                    iter_flops: 0,
                },
                best_relative_mse: 0.005,
                equivariance_clone: 1e-2,
                equivariance_true: 1e-7,
                config_hash: "0".into(),
                clonability_bound: None,
            }],
            fidelity: None,
            results: vec![model(ModelKind::Gcnn, 0.7), model(ModelKind::Mlp, 0.3)],
            seconds: 1.0,
            memory: Vec::new(),
            kernels: Vec::new(),
            incomplete: None,
        }
    }

    fn files(r: &Report) -> Vec<String> {
        render(r).unwrap().into_iter().map(|f| f.file).collect()
    }

    #[test]
    fn optional_figures_appear_exactly_when_their_data_does() {
        let mut r = synthetic();
        assert_eq!(
            files(&r),
            [
                "clone-loss.svg",
                "training.svg",
                "accuracy.svg",
                "equivariance.svg"
            ]
        );
        assert!(rotation_accuracy(&r).is_none());
        // Rotation accuracies for one model: the figure, with that model only.
        r.results[0].accuracy_by_rotation = Some(vec![0.9, 0.5, 0.4, 0.6]);
        let f = rotation_accuracy(&r).expect("a rotation figure");
        let svg = crate::report::render::svg(&f).unwrap();
        for t in ["\n90°\n", "\n270°\n", "\ngcnn\n", "test accuracy (%)"] {
            assert!(svg.contains(t), "{t:?}");
        }
        assert!(!svg.contains("\nmlp\n"));
        assert!(files(&r).contains(&"rotation-accuracy.svg".to_string()));
        // A clonability bound: a dashed line in the clone-loss figure, a column in the table.
        assert!(!crate::report::render::svg(&clone_loss(&r).unwrap())
            .unwrap()
            .contains("bound"));
        r.clones[0].clonability_bound = Some(1e-3);
        assert!(crate::report::render::svg(&clone_loss(&r).unwrap())
            .unwrap()
            .contains("bound, p4 6"));
        assert!(super::super::document::markdown(&r).contains("clonability bound"));
        // Layer equivariance before and after fine-tuning: a panel of its own.
        r.results[1].layer_equivariance = Some(vec![LayerEquivariance {
            layer: "layer 1".into(),
            before: Some(1e-6),
            after: 1e-2,
        }]);
        let svg = crate::report::render::svg(&equivariance(&r).unwrap()).unwrap();
        assert!(svg.contains("before fine-tuning") && svg.contains("mlp on symmetric"));
    }
}
