use super::*;
use crate::object::{Entry, EntryKind, Layer, LayerKind, RootMeta, Tree};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::init(&dir.path().join("s")).unwrap();
    (dir, store)
}

/// A layer over a tree holding one file; returns (layer, tree, blob).
fn sample(store: &Store, content: &[u8]) -> (ObjectId, ObjectId, ObjectId) {
    let blob = store.write_bytes(Kind::Blob, content).unwrap();
    let tree = Tree {
        opaque: false,
        entries: vec![Entry {
            name: b"f".to_vec(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            kind: EntryKind::File {
                blob,
                size: content.len() as u64,
            },
            xattrs: vec![],
        }],
    };
    let tree = store.write_tree(&tree).unwrap();
    let layer = Layer {
        kind: LayerKind::Base,
        tree,
        root: RootMeta::default(),
        parents: vec![],
        provenance: Default::default(),
    };
    (store.write_layer_object(&layer).unwrap(), tree, blob)
}

fn pack_of(store: &Store, objects: &[(Kind, ObjectId)]) -> Vec<u8> {
    let mut out = Vec::new();
    write_pack(store, objects, &mut out).unwrap();
    out
}

#[test]
fn round_trip_publishes_everything() {
    let (_a, src) = store();
    let (_b, dst) = store();
    let (layer, tree, blob) = sample(&src, b"hello");
    let objects = objects_for(&src, &[(Kind::Layer, layer)], &[]).unwrap();
    assert_eq!(objects.len(), 3);
    let pack = pack_of(&src, &objects);
    let mut q = Quarantine::new(&dst).unwrap();
    q.add_pack(&pack[..]).unwrap();
    assert!(!dst.has(Kind::Layer, &layer));
    let stats = q.publish().unwrap();
    assert_eq!(stats.objects, 3);
    assert!(dst.has(Kind::Layer, &layer) && dst.has(Kind::Tree, &tree) && dst.has(Kind::Blob, &blob));
    assert!(crate::fsck::fsck(&dst).unwrap().ok());
    assert_eq!(first_missing(&dst, (Kind::Layer, layer)).unwrap(), None);
}

#[test]
fn haves_exclude_what_they_reach() {
    let (_a, src) = store();
    let (base, _, _) = sample(&src, b"one");
    assert!(objects_for(&src, &[(Kind::Layer, base)], &[(Kind::Layer, base)])
        .unwrap()
        .is_empty());
}

#[test]
fn a_truncated_pack_publishes_nothing() {
    let (_a, src) = store();
    let (_b, dst) = store();
    let (layer, _, _) = sample(&src, &vec![7u8; 100_000]);
    let objects = objects_for(&src, &[(Kind::Layer, layer)], &[]).unwrap();
    let pack = pack_of(&src, &objects);
    for cut in [5, MAGIC.len() + 3, pack.len() / 2, pack.len() - 1] {
        let mut q = Quarantine::new(&dst).unwrap();
        let err = q.add_pack(&pack[..cut]).unwrap_err();
        assert!(matches!(err, Error::Bad(_)), "cut at {cut}: {err}");
        drop(q);
    }
    assert!(dst.list_objects().unwrap().0.is_empty());
    assert_eq!(std::fs::read_dir(dst.path("tmp")).unwrap().count(), 0);
}

#[test]
fn a_lying_object_is_refused() {
    let (_a, src) = store();
    let (_b, dst) = store();
    let (_, _, blob) = sample(&src, b"truth");
    // Same length, other bytes, under the old id.
    std::fs::write(src.object_path(Kind::Blob, &blob), b"lies!").unwrap();
    let pack = pack_of(&src, &[(Kind::Blob, blob)]);
    let mut q = Quarantine::new(&dst).unwrap();
    let err = q.add_pack(&pack[..]).unwrap_err().to_string();
    assert!(err.contains("hash to"), "{err}");
    drop(q);
    assert!(dst.list_objects().unwrap().0.is_empty());
}

#[test]
fn a_pack_missing_a_child_publishes_nothing() {
    let (_a, src) = store();
    let (_b, dst) = store();
    let (layer, tree, _) = sample(&src, b"x");
    let pack = pack_of(&src, &[(Kind::Layer, layer), (Kind::Tree, tree)]);
    let mut q = Quarantine::new(&dst).unwrap();
    q.add_pack(&pack[..]).unwrap();
    let err = q.publish().unwrap_err().to_string();
    assert!(err.contains("neither in the pack nor in the store"), "{err}");
    assert!(dst.list_objects().unwrap().0.is_empty());
}

#[test]
fn negotiation_stops_at_what_the_other_side_has() {
    let (_a, src) = store();
    let (l1, t1, _) = sample(&src, b"a");
    let mut asked = Vec::new();
    let out = negotiate::<()>(
        &[(Kind::Layer, l1)],
        |batch| {
            asked.extend_from_slice(batch);
            Ok(batch.iter().map(|(k, _)| *k == Kind::Layer).collect())
        },
        |batch| Ok(batch.iter().flat_map(|(k, id)| src.children(*k, id).unwrap()).collect()),
    )
    .unwrap();
    assert_eq!(out, vec![(Kind::Layer, l1)]);
    assert_eq!(asked, vec![(Kind::Layer, l1), (Kind::Tree, t1)]);
}
