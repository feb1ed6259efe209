//! Training: gradients reach every trainable tensor, and a run resumed from a checkpoint continues
//! with the same loss curve as an uninterrupted one.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use candle_core::{Device, Tensor};
use candor::kernels::int8::Precision;
use candor::engine::batch::pad_batch;
use candor::models::arch::{EncodedBatch, Mode, SequenceClassifier};
use candor::models::{Registry, ResolvedModel};
use candor::train::{self, batch_loss, LogLine, RunOptions, Silent, TrainConfig, TrainableBert};

/// A base checkpoint: the tiny BERT fixture (no pooler, no head) with a word-level tokenizer.
fn tiny_base(dir: &Path) -> ResolvedModel {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert-embed");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture.join(f), dir.join(f)).unwrap();
    }
    common::tiny_tokenizer(dir, 64);
    bert_at(dir, "tiny")
}

/// A BERT model folder as a resolved model named `name` (unverified).
fn bert_at(dir: &Path, name: &str) -> ResolvedModel {
    let mut entry = Registry::builtin().unwrap().get("all-minilm-l6-v2").unwrap().clone();
    entry.name = name.into();
    ResolvedModel { entry, dir: dir.to_path_buf(), from: "test".into(), hashes: Default::default() }
}

fn labels() -> Vec<String> {
    ["entailment", "neutral", "contradiction"].iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_trainable_tensor_gets_a_nonzero_gradient() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tiny_base(tmp.path());
    let net = TrainableBert::from_base(&base.dir, &labels(), 0.1, 0.1, 3, &Device::Cpu).unwrap();
    let tok = common::tiny_tokenizer(tmp.path(), 64);
    let enc = tok.encode_pairs(&[("w5 w6 w7 w8", "w5 w6"), ("w9 w10", "w11 w12 w13"), ("w20", "w21")]).unwrap();
    let (ids, mask, types) = pad_batch(&enc.iter().collect::<Vec<_>>(), tok.pad_id());
    let batch = EncodedBatch::from_rows(&ids, &mask, &types, &Device::Cpu).unwrap();
    let allowed = Tensor::new(&[[1.0f32, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]], &Device::Cpu).unwrap();
    let logits = net.model.logits(&batch, Mode::Train { seed: 1 }).unwrap();
    let loss = batch_loss(&logits, &allowed).unwrap();
    let grads = loss.backward().unwrap();
    let vars = net.vars();
    // The encoder (embeddings, 2 layers), a new pooler and a new head.
    assert!(vars.len() >= 30, "{}", vars.len());
    for (name, var) in &vars {
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient"));
        let l1 = g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(l1 > 0.0 && l1.is_finite(), "{name}: gradient L1 {l1}");
    }
}

/// A random BERT checkpoint whose heads the CPU training kernels take (2 heads of 32), with a
/// pooler and a 3-way head, and the word-level tokenizer.
fn kernel_sized_base(dir: &Path) -> candor::engine::TextTokenizer {
    let config = serde_json::json!({
        "model_type": "bert", "vocab_size": 64, "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 80, "hidden_act": "gelu", "max_position_embeddings": 64,
        "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        "id2label": {"0": "entailment", "1": "neutral", "2": "contradiction"}
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let cfg: candor::models::arch::bert::Config = serde_json::from_value(config).unwrap();
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &Device::Cpu);
    candor::models::arch::bert::BertClassifier::load_for_training(vb, &cfg).unwrap();
    varmap.save(dir.join("model.safetensors")).unwrap();
    common::tiny_tokenizer(dir, 64)
}

#[test]
fn the_cpu_training_kernels_give_the_gradients_of_candles_autograd() {
    if !candor::kernels::train::available() {
        eprintln!("neither AVX-512 nor AVX2 here: the training kernels do not run, nothing to compare");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tok = kernel_sized_base(tmp.path());
    // Rows of different lengths, so that the kernels' packed rows and candle's padded batch differ.
    let enc = tok
        .encode_pairs(&[("w5 w6 w7 w8 w9 w10 w11", "w5 w6"), ("w9 w10", "w11 w12 w13"), ("w20", "w21"), ("w30 w31 w32 w33 w34 w35 w36 w37 w38 w39 w40 w41", "w42 w43 w44 w45 w46")])
        .unwrap();
    let (ids, mask, types) = pad_batch(&enc.iter().collect::<Vec<_>>(), tok.pad_id());
    let batch = EncodedBatch::from_rows(&ids, &mask, &types, &Device::Cpu).unwrap();
    let allowed = Tensor::new(&[[1.0f32, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], &Device::Cpu).unwrap();
    let grads_of = |kernels: bool| {
        let mut net = TrainableBert::from_base(tmp.path(), &labels(), 0.0, 0.0, 3, &Device::Cpu).unwrap();
        net.model.set_train_kernels(kernels);
        assert_eq!(net.model.trains_on_kernels(&batch), kernels);
        let logits = net.model.logits(&batch, Mode::Train { seed: 1 }).unwrap();
        let loss = batch_loss(&logits, &allowed).unwrap();
        let grads = loss.backward().unwrap();
        let mut out: Vec<(String, Vec<f32>)> = net
            .vars()
            .into_iter()
            .map(|(name, var)| {
                let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient (kernels {kernels})"));
                (name, g.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        (loss.to_scalar::<f32>().unwrap(), out)
    };
    let (loss_k, kernel) = grads_of(true);
    let (loss_c, composed) = grads_of(false);
    // The kernels' sums run in a fixed order: the same batch gives the same gradients bit for bit
    // (a resumed run reproduces an uninterrupted one).
    let (loss_again, again) = grads_of(true);
    assert_eq!(loss_k.to_bits(), loss_again.to_bits());
    assert!(kernel == again, "the kernels' gradients changed between two identical passes");
    assert!((loss_k - loss_c).abs() < 1e-4 * loss_c.abs().max(1.0), "loss {loss_k} against {loss_c}");
    assert_eq!(kernel.len(), composed.len());
    assert!(kernel.len() >= 30, "{}", kernel.len());
    let largest = composed.iter().flat_map(|(_, g)| g.iter()).fold(0f32, |m, v| m.max(v.abs()));
    for ((name, a), (_, b)) in kernel.iter().zip(&composed) {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        if name.ends_with("attention.self.key.bias") {
            // Softmax ignores a shift shared by every key: this gradient is zero but for rounding,
            // on both paths.
            assert!(err < 1e-5 * largest, "{name}: {err} against a largest gradient of {largest}");
            continue;
        }
        assert!(scale > 0.0, "{name}: zero gradient");
        assert!(err < 2e-3 * scale, "{name}: gradients differ by {} of the largest", err / scale);
    }
}

fn tiny_config(dir: &Path) -> TrainConfig {
    // Pairs whose label follows from the words: the hypothesis repeats the premise (entailment), uses
    // words of another range (contradiction), or mixes (neutral); grounding rows say only "not".
    let mut nli = vec![];
    let mut grounding = vec![];
    for i in 0..60usize {
        let a: Vec<String> = (0..3 + i % 4).map(|k| format!("w{}", 4 + (i + k) % 20)).collect();
        let (h, label) = match i % 3 {
            0 => (a[..2].join(" "), "entailment"),
            1 => (format!("w{} w{}", 40 + i % 10, 50 + i % 9), "contradiction"),
            _ => (format!("{} w{}", a[0], 45 + i % 10), "neutral"),
        };
        nli.push(serde_json::json!({"premise": a.join(" "), "hypothesis": h, "label": label}).to_string());
        let label = if i % 2 == 0 { "supported" } else { "not_supported" };
        let claim = if i % 2 == 0 { a[..2].join(" ") } else { format!("w{}", 30 + i % 10) };
        grounding.push(serde_json::json!({"evidence": a.join(" "), "claim": claim, "label": label}).to_string());
    }
    std::fs::write(dir.join("nli.jsonl"), nli.join("\n")).unwrap();
    std::fs::write(dir.join("g.jsonl"), grounding.join("\n")).unwrap();
    let text = r#"
base = "tiny"
labels = ["entailment", "neutral", "contradiction"]
max_tokens = 32
epochs = 6
batch_tokens = 128
batch_size = 8
checkpoint_every = 3
eval_every = 4
attention_dropout = 0.1
export_dtype = "f32"
[optimizer]
lr = 1e-3
beta1 = 0.9
beta2 = 0.999
eps = 1e-6
weight_decay = 0.01
[[train]]
path = "nli.jsonl"
format = "nli"
labels = { entailment = "entailment", neutral = "neutral", contradiction = "contradiction" }
[[train]]
path = "g.jsonl"
format = "grounding"
labels = { supported = "entailment", not_supported = "not_entailment" }
heldout = 0.25
part = "train"
[[dev]]
path = "nli.jsonl"
format = "nli"
labels = { entailment = "entailment", neutral = "neutral", contradiction = "contradiction" }
[[test]]
name = "g-heldout"
path = "g.jsonl"
format = "grounding"
labels = { supported = "entailment", not_supported = "not_entailment" }
heldout = 0.25
part = "heldout"
"#;
    toml::from_str(text).unwrap()
}

fn read_log(path: &Path) -> Vec<LogLine> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn resumed_run_continues_the_same_loss_curve() {
    let tmp = tempfile::tempdir().unwrap();
    let base_dir = tmp.path().join("base");
    std::fs::create_dir_all(&base_dir).unwrap();
    let base = tiny_base(&base_dir);
    let cfg = tiny_config(tmp.path());
    let stop = AtomicBool::new(false);
    let opts = |out: &str, max_steps: Option<u64>| RunOptions {
        out: tmp.path().join(out),
        data_dir: tmp.path().to_path_buf(),
        device: Device::Cpu,
        max_steps,
        fresh: false,
        stop: &stop,
        synthesize: vec![],
    };

    let whole = train::run(&cfg, &base, &opts("whole", None), &mut Silent).unwrap();
    assert!(whole.finished);
    let a = read_log(&tmp.path().join("whole/train_log.jsonl"));
    assert_eq!(a.len() as u64, whole.state.step);
    assert!(a.len() >= 10, "{}", a.len());

    // Stop after 5 steps (a stop writes a checkpoint, as Ctrl-C does), then resume in a new run.
    let part = train::run(&cfg, &base, &opts("split", Some(5)), &mut Silent).unwrap();
    assert!(!part.finished);
    assert_eq!(part.state.step, 5);
    // Then a crash in the middle of writing the next checkpoint, between the renames of its swap:
    // the step-5 checkpoint set aside as checkpoint.old, a checkpoint.tmp written only in part. The
    // resumed run must read the complete step-5 checkpoint, and clear what the crash left.
    let split = tmp.path().join("split");
    std::fs::rename(split.join("checkpoint"), split.join("checkpoint.old")).unwrap();
    std::fs::create_dir(split.join("checkpoint.tmp")).unwrap();
    std::fs::copy(split.join("checkpoint.old/model.safetensors"), split.join("checkpoint.tmp/model.safetensors")).unwrap();
    std::fs::write(split.join("checkpoint.tmp/state.json"), r#"{"step": 99, "epoch": 5, "batch_in_epoch": 0, "seconds": 0.0, "examples": 0}"#).unwrap();
    struct Notes(Vec<String>);
    impl train::Observer for Notes {
        fn note(&mut self, msg: &str) {
            self.0.push(msg.to_string());
        }
    }
    let mut notes = Notes(vec![]);
    let rest = train::run(&cfg, &base, &opts("split", None), &mut notes).unwrap();
    assert!(rest.finished);
    assert!(notes.0.iter().any(|n| n.starts_with("resuming from step 5 ")), "{:?}", notes.0);
    assert!(!split.join("checkpoint.old").exists() && !split.join("checkpoint.tmp").exists());
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(split.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(saved["step"].as_u64(), Some(rest.state.step));
    let b = read_log(&tmp.path().join("split/train_log.jsonl"));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.step, y.step);
        assert!((x.loss - y.loss).abs() < 1e-6, "step {}: {} vs {}", x.step, x.loss, y.loss);
        assert!((x.lr - y.lr).abs() < 1e-15);
    }
    // The loss falls: the run learned something.
    let first: f64 = a[..3].iter().map(|l| l.loss).sum::<f64>() / 3.0;
    let last: f64 = a[a.len() - 3..].iter().map(|l| l.loss).sum::<f64>() / 3.0;
    assert!(last < first, "loss {first} -> {last}");
    // The exported folders are identical, byte for byte.
    let wa = std::fs::read(tmp.path().join("whole/model/model.safetensors")).unwrap();
    let wb = std::fs::read(tmp.path().join("split/model/model.safetensors")).unwrap();
    assert!(wa == wb, "exported weights differ");
    assert_eq!(whole.test.len(), 1);
}

#[test]
fn exported_model_loads_as_a_classifier_with_the_trained_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let base_dir = tmp.path().join("base");
    std::fs::create_dir_all(&base_dir).unwrap();
    let base = tiny_base(&base_dir);
    let mut cfg = tiny_config(tmp.path());
    cfg.epochs = 1;
    let stop = AtomicBool::new(false);
    let opts = RunOptions { out: tmp.path().join("o"), data_dir: tmp.path().to_path_buf(), device: Device::Cpu, max_steps: None, fresh: false, stop: &stop, synthesize: vec![] };
    let outcome = train::run(&cfg, &base, &opts, &mut Silent).unwrap();
    let dir = outcome.model_dir.unwrap();
    let cfg_json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg_json["id2label"]["0"], "entailment");
    let tok: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer.json")).unwrap()).unwrap();
    assert!(tok["padding"].is_null() && tok["truncation"].is_null());
    let model = candor::models::arch::load_classifier(candor::models::Architecture::Bert, &dir, candle_core::DType::F32, &Device::Cpu, Precision::F32).unwrap();
    assert_eq!(model.num_labels(), 3);
    // The dev report computed in training equals a fresh evaluation of the exported files.
    let ex = candor::train::data::load(&cfg.dev[0], tmp.path(), &cfg.labels).unwrap();
    let t = candor::engine::TextTokenizer::from_file(&dir.join("tokenizer.json"), cfg.max_tokens).unwrap();
    let r = train::evaluate("dev", model.as_ref(), &t, &ex, &cfg.labels, &Device::Cpu, None).unwrap();
    assert!((r.accuracy.unwrap() - outcome.dev[0].accuracy.unwrap()).abs() < 1e-9);
}

/// A config that cannot be trained with is refused, naming the field, before anything is loaded or
/// written: neither `train::run` nor `train::run_recipe` creates the output folder.
#[test]
fn an_invalid_config_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let base_dir = tmp.path().join("base");
    std::fs::create_dir_all(&base_dir).unwrap();
    let base = tiny_base(&base_dir);
    let mut cfg = tiny_config(tmp.path());
    cfg.batch_size = 0;
    let stop = AtomicBool::new(false);
    let out = tmp.path().join("o");
    let opts = RunOptions { out: out.clone(), data_dir: tmp.path().to_path_buf(), device: Device::Cpu, max_steps: None, fresh: false, stop: &stop, synthesize: vec![] };
    let err = train::run(&cfg, &base, &opts, &mut Silent).unwrap_err().to_string();
    assert!(err.contains("`batch_size` is 0"), "{err}");
    assert!(!out.exists(), "the refused run wrote {}", out.display());

    let root = tmp.path().join("r");
    let store = tiny_store(&root);
    let (_, mut two) = two_stages(&root);
    two.checkpoint_every = 0;
    std::fs::write(root.join("stage2.toml"), toml::to_string(&two).unwrap()).unwrap();
    let opts = RunOptions { out: root.join("run"), data_dir: Default::default(), ..opts };
    let err = train::run_recipe(&root.join("stage2.toml"), &store, &opts, &mut Silent).unwrap_err().to_string();
    assert!(err.contains("`checkpoint_every` is 0") && err.contains("stage2.toml"), "{err}");
    // Not even the first stage, which is valid, was trained.
    assert!(!root.join("run").exists());
}

/// Every recipe shipped beside the default model (the shipped average and its members, the first
/// one, the GPU stage, the measured second stages) parses, and none trains on a test set: never on
/// SNLI test, SICK test, ANLI or AttributionBench, and on a file split into parts only on its
/// training part, by the same held-out fraction as the recipe's own test set of that file.
#[test]
fn no_recipe_trains_on_a_test_set() {
    use candor::train::data::Part;
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut all = vec![];
    for dir in std::fs::read_dir(&models).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()) {
        all.extend(
            std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("train") && p.extension().is_some_and(|x| x == "toml")),
        );
    }
    all.sort();
    assert!(all.len() >= 3, "{all:?}");
    for r in &all {
        let dir = r.parent().unwrap();
        let recipes: Vec<_> = all.iter().filter(|p| p.parent() == Some(dir)).cloned().collect();
        let cfg = TrainConfig::from_file(r).unwrap_or_else(|e| panic!("{}: {e}", r.display()));
        assert!(!cfg.test.is_empty(), "{}: no test sets", r.display());
        if let Some(prev) = &cfg.from_recipe {
            assert!(cfg.base.is_empty(), "{}: both a base and a recipe to continue from", r.display());
            assert!(recipes.contains(&dir.join(prev)), "{}: continues from {prev}, which is not beside it", r.display());
        }
        for member in &cfg.average {
            assert!(cfg.train.is_empty() && cfg.base.is_empty(), "{}: averages and trains", r.display());
            // Beside it, or another shipped recipe (candor-nli-minilm-3 averages candor-nli-minilm-2's):
            // either way one this test reads.
            let at = std::fs::canonicalize(dir.join(member)).unwrap_or_else(|e| panic!("{}: averages {member}: {e}", r.display()));
            assert!(all.iter().any(|p| std::fs::canonicalize(p).ok().as_ref() == Some(&at)), "{}: averages {member}, which is no shipped recipe", r.display());
        }
        for t in &cfg.train {
            assert!(!t.splits.iter().any(|s| s == "test"), "{}: {} trains on a release's test split", r.display(), t.path);
            // The issue's test sets, and the similarity test splits that other quality tests measure on.
            for never in ["snli-test", "sick-test", "anli-", "attributionbench", "stsb-test", "msrp-test"] {
                assert!(!t.path.contains(never), "{}: trains on {}", r.display(), t.path);
            }
            for held in cfg.test.iter().filter(|x| x.path == t.path) {
                if !held.splits.is_empty() {
                    // Split by the release's own split: the training set takes none of the test's.
                    assert!(!t.splits.is_empty(), "{}: {} trains on every split, its test split included", r.display(), t.path);
                    assert!(t.splits.iter().all(|s| !held.splits.contains(s)), "{}: {} trains on its test split", r.display(), t.path);
                    continue;
                }
                assert_eq!(t.heldout_by, held.heldout_by, "{}: {} hashes its held-out part differently for training and test", r.display(), t.path);
                assert_eq!(held.part, Part::Heldout, "{}: {} is a test set whole", r.display(), t.path);
                assert_eq!(t.part, Part::Train, "{}: {} trains on more than its training part", r.display(), t.path);
                assert_eq!(t.heldout, held.heldout, "{}: {} splits differently for training and test", r.display(), t.path);
            }
        }
    }
}

/// A registry whose only entry, `tiny`, is the tiny BERT in ROOT/models/tiny (verified), and a
/// store over it with its cache in ROOT/cache.
fn tiny_store(root: &Path) -> candor::models::ModelStore {
    use candor::models::{ModelStore, Registry};
    let tiny_dir = root.join("models/tiny");
    std::fs::create_dir_all(&tiny_dir).unwrap();
    tiny_base(&tiny_dir);
    let files: Vec<String> = ["config.json", "tokenizer.json", "model.safetensors"]
        .iter()
        .map(|f| format!("{{ path = \"{f}\", sha256 = \"{}\" }}", candor::models::verify::sha256_file(&tiny_dir.join(f)).unwrap()))
        .collect();
    let registry = format!(
        "[[model]]\nname = \"tiny\"\nrole = \"embed\"\narchitecture = \"bert\"\nlicense = \"Apache-2.0\"\ndescription = \"test\"\nmax_tokens = 64\npooling = \"mean\"\nfiles = [{}]\n[[model.source]]\npath = \"models/tiny\"\n",
        files.join(", ")
    );
    let registry = Registry::parse(&registry, "test registry", root).unwrap();
    ModelStore::from_env(registry).with_models_override(None).with_cache_dir(root.join("cache"))
}

/// Writes ROOT/stage1.toml (the tiny recipe for one epoch) and ROOT/stage2.toml (the same data,
/// another seed, continuing from stage 1) and returns both.
fn two_stages(root: &Path) -> (TrainConfig, TrainConfig) {
    let mut one = tiny_config(root);
    one.epochs = 1;
    one.data_dir = ".".into();
    std::fs::write(root.join("stage1.toml"), toml::to_string(&one).unwrap()).unwrap();
    let mut two = one.clone();
    two.base = String::new();
    two.from_recipe = Some("stage1.toml".into());
    two.seed = 99;
    std::fs::write(root.join("stage2.toml"), toml::to_string(&two).unwrap()).unwrap();
    (one, two)
}

/// A staged recipe (`from_recipe`) trains the recipe it names first, in OUT/from-recipe, then starts
/// from the model that stage exported; a run cut off in the first stage stops there and resumes; a
/// finished stage is reused, not retrained; and a first stage made by another recipe is refused.
#[test]
fn a_staged_recipe_trains_its_first_stage_then_continues_from_its_model() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = tiny_store(root);

    let (mut one, mut two) = two_stages(root);

    let stop = AtomicBool::new(false);
    let opts = |out: &str, max_steps: Option<u64>| RunOptions {
        out: root.join(out),
        data_dir: Default::default(),
        device: Device::Cpu,
        max_steps,
        fresh: false,
        stop: &stop,
        synthesize: vec![],
    };
    // Cut off inside the first stage: the outcome is that stage's, unfinished.
    let cut = train::run_recipe(&root.join("stage2.toml"), &store, &opts("run", Some(2)), &mut Silent).unwrap();
    assert!(!cut.finished);
    assert_eq!(cut.out, root.join("run").join(train::FROM_RECIPE_DIR));
    assert!(!root.join("run/checkpoint").exists());

    let done = train::run_recipe(&root.join("stage2.toml"), &store, &opts("run", None), &mut Silent).unwrap();
    assert!(done.finished);
    assert_eq!(done.out, root.join("run"));
    let stage1_model = root.join("run/from-recipe/model");
    let stage1_log = std::fs::read(root.join("run/from-recipe/train_log.jsonl")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("run/training.json")).unwrap()).unwrap();
    let w1 = candor::models::verify::sha256_file(&stage1_model.join("model.safetensors")).unwrap();
    assert_eq!(summary["base"], format!("stage1@{}", &w1[..12]));

    // Stage 2 started from stage 1's weights: the same as a run of stage 2 on that folder as its base.
    let base = bert_at(&stage1_model, "stage1");
    let direct = train::run(&two, &base, &RunOptions { data_dir: root.to_path_buf(), ..opts("direct", None) }, &mut Silent).unwrap();
    assert!(direct.finished);
    let staged_w = std::fs::read(root.join("run/model/model.safetensors")).unwrap();
    let direct_w = std::fs::read(root.join("direct/model/model.safetensors")).unwrap();
    assert!(staged_w == direct_w, "the staged run did not start from stage 1's model");
    let stage1_w = std::fs::read(stage1_model.join("model.safetensors")).unwrap();
    assert!(staged_w != stage1_w, "stage 2 changed nothing");

    // Run again: stage 1 is reused as it is (its log untouched), stage 2 resumes at its end.
    let again = train::run_recipe(&root.join("stage2.toml"), &store, &opts("run", None), &mut Silent).unwrap();
    assert!(again.finished);
    assert_eq!(again.state.step, done.state.step);
    assert_eq!(std::fs::read(root.join("run/from-recipe/train_log.jsonl")).unwrap(), stage1_log);

    // The first stage's recipe changed: the finished stage no longer matches it, and the run says so.
    one.seed += 1;
    std::fs::write(root.join("stage1.toml"), toml::to_string(&one).unwrap()).unwrap();
    let err = train::run_recipe(&root.join("stage2.toml"), &store, &opts("run", None), &mut Silent).unwrap_err();
    assert!(err.to_string().contains("different recipe"), "{err}");
    // --fresh starts every stage over, with the recipe as it is now.
    let fresh = train::run_recipe(&root.join("stage2.toml"), &store, &RunOptions { fresh: true, ..opts("run", None) }, &mut Silent).unwrap();
    assert!(fresh.finished);
    let redone: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("run/from-recipe/training.json")).unwrap()).unwrap();
    assert_eq!(redone["config"]["seed"], one.seed);
    assert!(std::fs::read(root.join("run/model/model.safetensors")).unwrap() != staged_w);

    // A recipe with both a base and a recipe to start from is refused.
    two.base = "tiny".into();
    std::fs::write(root.join("both.toml"), toml::to_string(&two).unwrap()).unwrap();
    let err = train::run_recipe(&root.join("both.toml"), &store, &opts("both", None), &mut Silent).unwrap_err();
    assert!(err.to_string().contains("not both"), "{err}");
}

/// A recipe that averages `members`, with `like`'s labels, data folder and dev and test sets.
fn average_of(like: &TrainConfig, members: &[&str]) -> TrainConfig {
    let mut soup = like.clone();
    soup.base = String::new();
    soup.train.clear();
    soup.average = members.iter().map(|m| m.to_string()).collect();
    soup
}

/// An `average` recipe trains every recipe it names (a recipe named twice, once, each on its own
/// data folder), writes the mean of their weights, evaluates it on its own test sets, reuses finished
/// members on a second run, and refuses members with other labels or a recipe that would also train.
#[test]
fn an_average_recipe_trains_its_members_once_and_writes_the_mean_of_their_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = tiny_store(root);
    let (one, _) = two_stages(root);
    let mut soup = average_of(&one, &["stage1.toml", "stage2.toml"]);
    // Its test set is read from its own data folder, which lacks the members' training and dev
    // files: each member reads its own.
    soup.dev.clear();
    std::fs::create_dir_all(root.join("tests-only")).unwrap();
    std::fs::copy(root.join("g.jsonl"), root.join("tests-only/g.jsonl")).unwrap();
    soup.data_dir = "tests-only".into();
    std::fs::write(root.join("soup.toml"), toml::to_string(&soup).unwrap()).unwrap();

    let stop = AtomicBool::new(false);
    let opts = |max_steps: Option<u64>| RunOptions { out: root.join("run"), data_dir: Default::default(), device: Device::Cpu, max_steps, fresh: false, stop: &stop, synthesize: vec![] };
    // Cut off in the first member: that member's outcome, unfinished, and no average yet.
    let cut = train::run_recipe(&root.join("soup.toml"), &store, &opts(Some(2)), &mut Silent).unwrap();
    assert!(!cut.finished);
    assert_eq!(cut.out, root.join("run").join(train::AVERAGE_DIR).join("1-stage1"));
    assert!(!root.join("run/model").exists());

    let done = train::run_recipe(&root.join("soup.toml"), &store, &opts(None), &mut Silent).unwrap();
    assert!(done.finished);
    let m1 = root.join("run/average/1-stage1/model");
    let m2 = root.join("run/average/2-stage2/model");
    // Stage 2 continued from the first member, not from a second training of stage 1.
    assert!(!root.join("run/average/2-stage2").join(train::FROM_RECIPE_DIR).exists());
    let s2: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("run/average/2-stage2/training.json")).unwrap()).unwrap();
    let w1 = candor::models::verify::sha256_file(&m1.join("model.safetensors")).unwrap();
    assert_eq!(s2["base"], format!("stage1@{}", &w1[..12]));

    // The weights are the mean of the members' (which differ), tensor by tensor.
    let load = |d: &Path| candle_core::safetensors::load(d.join("model.safetensors"), &Device::Cpu).unwrap();
    let (a, b, avg) = (load(&m1), load(&m2), load(&root.join("run/model")));
    assert_eq!(avg.len(), a.len());
    let mut differing = 0;
    for (k, t) in &avg {
        let x = a[k].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let y = b[k].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let m = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        differing += x.iter().zip(&y).any(|(p, q)| p != q) as usize;
        for ((p, q), r) in x.iter().zip(&y).zip(&m) {
            assert!((r - (p + q) / 2.0).abs() <= 1e-6 * (1.0 + r.abs()), "{k}: {r} vs mean of {p} and {q}");
        }
    }
    assert!(differing > 10, "the members barely differ ({differing} tensors)");
    // Its own test sets were evaluated on the average, and the summary lists the members.
    assert_eq!(done.test.len(), 1);
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("run/training.json")).unwrap()).unwrap();
    assert_eq!(summary["members"].as_array().unwrap().len(), 2);
    assert_eq!(summary["test"][0]["name"], "g-heldout");
    let _ = candor::models::arch::load_classifier(candor::models::Architecture::Bert, &root.join("run/model"), candle_core::DType::F32, &Device::Cpu, Precision::F32).unwrap();

    // Run again: the members are reused as they are, and the average is the same.
    let log1 = std::fs::read(root.join("run/average/1-stage1/train_log.jsonl")).unwrap();
    let avg_bytes = std::fs::read(root.join("run/model/model.safetensors")).unwrap();
    let again = train::run_recipe(&root.join("soup.toml"), &store, &opts(None), &mut Silent).unwrap();
    assert!(again.finished);
    assert_eq!(std::fs::read(root.join("run/average/1-stage1/train_log.jsonl")).unwrap(), log1);
    assert!(std::fs::read(root.join("run/model/model.safetensors")).unwrap() == avg_bytes);

    // A member with other labels, or an average recipe that also trains, is refused.
    let mut other = one.clone();
    other.labels = vec!["entailment".into(), "other".into(), "contradiction".into()];
    std::fs::write(root.join("other.toml"), toml::to_string(&other).unwrap()).unwrap();
    let mut bad = soup.clone();
    bad.average = vec!["stage1.toml".into(), "other.toml".into()];
    std::fs::write(root.join("bad.toml"), toml::to_string(&bad).unwrap()).unwrap();
    let err = train::run_recipe(&root.join("bad.toml"), &store, &opts(None), &mut Silent).unwrap_err();
    assert!(err.to_string().contains("labels"), "{err}");
    let mut trains = soup.clone();
    trains.train = one.train.clone();
    std::fs::write(root.join("trains.toml"), toml::to_string(&trains).unwrap()).unwrap();
    let err = train::run_recipe(&root.join("trains.toml"), &store, &opts(None), &mut Silent).unwrap_err();
    assert!(err.to_string().contains("trains nothing itself"), "{err}");

    // `average_base` adds the registry checkpoint the members start from (WiSE-FT). A registry NLI
    // model (stage 1's classifier, registered as `tiny-nli`), a recipe continuing from it, and their
    // average: the mean of the two, the base listed among the members.
    let nli_dir = root.join("models/tiny-nli");
    std::fs::create_dir_all(&nli_dir).unwrap();
    let files: Vec<String> = ["config.json", "tokenizer.json", "model.safetensors"]
        .iter()
        .map(|f| {
            std::fs::copy(m1.join(f), nli_dir.join(f)).unwrap();
            format!("{{ path = \"{f}\", sha256 = \"{}\" }}", candor::models::verify::sha256_file(&nli_dir.join(f)).unwrap())
        })
        .collect();
    let labels = one.labels.iter().map(|l| format!("{l:?}")).collect::<Vec<_>>().join(", ");
    let registry = format!(
        "[[model]]\nname = \"tiny-nli\"\nrole = \"nli\"\narchitecture = \"bert\"\nlicense = \"Apache-2.0\"\ndescription = \"test\"\nmax_tokens = 64\nlabels = [{labels}]\nfiles = [{}]\n[[model.source]]\npath = \"models/tiny-nli\"\n",
        files.join(", ")
    );
    let nli_store = candor::models::ModelStore::from_env(candor::models::Registry::parse(&registry, "test registry", root).unwrap())
        .with_models_override(None)
        .with_cache_dir(root.join("cache-nli"));
    let mut cont = one.clone();
    cont.base = "tiny-nli".into();
    cont.seed = 7;
    std::fs::write(root.join("cont.toml"), toml::to_string(&cont).unwrap()).unwrap();
    let mut wise = average_of(&one, &["cont.toml"]);
    wise.average_base = true;
    std::fs::write(root.join("wise.toml"), toml::to_string(&wise).unwrap()).unwrap();
    let wise_opts = || RunOptions { out: root.join("wise"), ..opts(None) };
    let wise_run = train::run_recipe(&root.join("wise.toml"), &nli_store, &wise_opts(), &mut Silent).unwrap();
    assert!(wise_run.finished);
    let (t, c, w) = (load(&nli_dir), load(&root.join("wise/average/1-cont/model")), load(&root.join("wise/model")));
    let mut moved = 0;
    for (k, m) in &w {
        let x = t[k].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let y = c[k].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        moved += x.iter().zip(&y).any(|(p, q)| p != q) as usize;
        for ((p, q), r) in x.iter().zip(&y).zip(&m.flatten_all().unwrap().to_vec1::<f32>().unwrap()) {
            assert!((r - (p + q) / 2.0).abs() <= 1e-6 * (1.0 + r.abs()), "{k}: {r} vs mean of base {p} and member {q}");
        }
    }
    assert!(moved > 10, "the member barely moved from its base ({moved} tensors)");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("wise/training.json")).unwrap()).unwrap();
    assert_eq!(summary["members"][0]["registry"], "tiny-nli");
    assert_eq!(summary["members"].as_array().unwrap().len(), 2);
    // The member's recipe gains a test set: the finished member is still reused (test sets do not
    // change weights), not retrained.
    let cont_log = std::fs::read(root.join("wise/average/1-cont/train_log.jsonl")).unwrap();
    cont.test.push(cont.test[0].clone());
    std::fs::write(root.join("cont.toml"), toml::to_string(&cont).unwrap()).unwrap();
    let again = train::run_recipe(&root.join("wise.toml"), &nli_store, &wise_opts(), &mut Silent).unwrap();
    assert!(again.finished);
    assert_eq!(std::fs::read(root.join("wise/average/1-cont/train_log.jsonl")).unwrap(), cont_log);
    // Without `average`, `average_base` is refused, not ignored.
    let mut lone = one.clone();
    lone.average_base = true;
    std::fs::write(root.join("lone.toml"), toml::to_string(&lone).unwrap()).unwrap();
    let err = train::run_recipe(&root.join("lone.toml"), &store, &opts(None), &mut Silent).unwrap_err();
    assert!(err.to_string().contains("average_base"), "{err}");
}

/// Resuming an average: members that continue from one recipe share its model even when none of the
/// members is that recipe (the first member trained it; a later run finds it there), and a finished
/// member made from an older model of that recipe is trained again, not averaged stale.
#[test]
fn an_average_resumed_shares_the_first_stage_and_retrains_stale_members() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = tiny_store(root);
    let (one, two) = two_stages(root);
    let mut three = two.clone();
    three.seed = 7;
    std::fs::write(root.join("stage3.toml"), toml::to_string(&three).unwrap()).unwrap();
    let soup = average_of(&one, &["stage2.toml", "stage3.toml"]);
    std::fs::write(root.join("soup.toml"), toml::to_string(&soup).unwrap()).unwrap();
    let stop = AtomicBool::new(false);
    let opts = RunOptions { out: root.join("run"), data_dir: Default::default(), device: Device::Cpu, max_steps: None, fresh: false, stop: &stop, synthesize: vec![] };
    let summary = |p: &str| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(root.join(p)).unwrap()).unwrap() };

    assert!(train::run_recipe(&root.join("soup.toml"), &store, &opts, &mut Silent).unwrap().finished);
    assert!(root.join("run/average/1-stage2/from-recipe/model").is_dir());
    assert!(!root.join("run/average/2-stage3/from-recipe").exists());

    // The second member is lost (as if cut off before it finished): the next run trains it again from
    // the first stage that the first member's folder holds, not from a second training of it.
    std::fs::remove_dir_all(root.join("run/average/2-stage3")).unwrap();
    let stage1_log = std::fs::read(root.join("run/average/1-stage2/from-recipe/train_log.jsonl")).unwrap();
    assert!(train::run_recipe(&root.join("soup.toml"), &store, &opts, &mut Silent).unwrap().finished);
    assert!(!root.join("run/average/2-stage3/from-recipe").exists());
    assert_eq!(std::fs::read(root.join("run/average/1-stage2/from-recipe/train_log.jsonl")).unwrap(), stage1_log);

    // The first stage's model changes under the finished members (here: replaced by other weights):
    // both members were made from the old one, so both are trained again, from the new one.
    let stage1 = root.join("run/average/1-stage2/from-recipe/model/model.safetensors");
    let old_base = summary("run/average/2-stage3/training.json")["base"].as_str().unwrap().to_string();
    let weights = |m: &str| std::fs::read(root.join(format!("run/average/{m}/model/model.safetensors"))).unwrap();
    let old_weights = [weights("1-stage2"), weights("2-stage3")];
    std::fs::copy(root.join("run/average/2-stage3/model/model.safetensors"), &stage1).unwrap();
    let new_hash = candor::models::verify::sha256_file(&stage1).unwrap();
    assert!(train::run_recipe(&root.join("soup.toml"), &store, &opts, &mut Silent).unwrap().finished);
    for m in ["1-stage2", "2-stage3"] {
        let base = summary(&format!("run/average/{m}/training.json"))["base"].as_str().unwrap().to_string();
        assert_ne!(base, old_base, "{m} was averaged stale");
        assert_eq!(base, format!("stage1@{}", &new_hash[..12]), "{m}");
    }
    // Trained again from the start, not resumed from the checkpoint of the old base.
    assert!(weights("1-stage2") != old_weights[0] && weights("2-stage3") != old_weights[1]);
    assert_eq!(summary("run/training.json")["members"][1]["base"].as_str().unwrap(), format!("stage1@{}", &new_hash[..12]));
}

/// `--synthesize` (RunOptions::synthesize) adds pairs made from unlabelled documents to the recipe
/// run: the same recipe trains more steps with them, and records the set in its training.json.
#[test]
fn synthesize_adds_pairs_from_documents_to_the_recipe_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = tiny_store(root);
    let (_, _) = two_stages(root);
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for d in 0..6 {
        let text = format!(
            "The council of town {d} approved the budget on Monday after a long debate. Mayor Alice Brown said the town would hire {} new teachers in 2025. \
             She added that the plan was funded by a grant from the state of Ohio. Critics in Springfield said that the grant was far too small for it. \
             The vote was 7 to 2, with John Smith and Mary Jones voting against the plan.",
            10 + d
        );
        std::fs::write(docs.join(format!("{d}.txt")), text).unwrap();
    }
    let stop = AtomicBool::new(false);
    let opts = |out: &str, synthesize: Vec<std::path::PathBuf>| RunOptions {
        out: root.join(out),
        data_dir: Default::default(),
        device: Device::Cpu,
        max_steps: None,
        fresh: false,
        stop: &stop,
        synthesize,
    };
    let plain = train::run_recipe(&root.join("stage1.toml"), &store, &opts("plain", vec![]), &mut Silent).unwrap();
    let with = train::run_recipe(&root.join("stage1.toml"), &store, &opts("with", vec![docs.clone()]), &mut Silent).unwrap();
    assert!(plain.finished && with.finished);
    let made = candor::text::perturb::synthesize(
        &candor::train::data::read_documents(&docs).unwrap().iter().map(String::as_str).collect::<Vec<_>>(),
        &candor::text::perturb::Options::default(),
    );
    assert!(made.len() >= 12, "{}", made.len());
    assert_eq!(with.state.examples, plain.state.examples + made.len() as u64, "every synthetic pair trains once per epoch");
    let summary = std::fs::read_to_string(root.join("with/training.json")).unwrap();
    assert!(summary.contains("documents") && summary.contains("synthetic pairs from"), "{summary}");

    // An average recipe trains nothing itself: --synthesize is refused, naming the recipe.
    std::fs::write(root.join("avg.toml"), "average = [\"stage1.toml\"]\nlabels = [\"entailment\", \"neutral\", \"contradiction\"]\n").unwrap();
    let err = train::run_recipe(&root.join("avg.toml"), &store, &opts("avg", vec![docs]), &mut Silent).unwrap_err().to_string();
    assert!(err.contains("--synthesize") && err.contains("avg.toml"), "{err}");
}
