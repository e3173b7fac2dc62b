//! Uploads that must extract: what CI scripts and people actually send.

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use common::*;
use toolgate_uploads::{
    ArchiveKind, ExtractError, ExtractLimits, SINGLE_TEMPLATE_NAME, extract, name_single_template,
};

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_zip_of_nested_folders_extracts_with_its_content() {
    let big = noise(300_000, 9);
    let zip = zip_of(&[
        ZipEntry::Dir("modules/"),
        ZipEntry::Dir("modules/vpc/"),
        ZipEntry::File("modules/vpc/main.tf", b"resource \"aws_vpc\" \"v\" {}\n"),
        ZipEntry::File("modules/vpc/variables.tf", b"variable \"cidr\" {}\n"),
        ZipEntry::File(
            "envs/prod/eu/main.tf",
            b"module \"vpc\" { source = \"../../../modules/vpc\" }\n",
        ),
        ZipEntry::Stored("assets/blob.bin", &big),
        ZipEntry::File("empty.tf", b""),
        ZipEntry::File("d\u{e9}j\u{e0}/\u{1F600}.tf", b"# unicode names are fine\n"),
    ]);
    let scratch = Scratch::with_upload(&zip);
    let tree =
        extract(&scratch.upload, &scratch.dest, &ExtractLimits::default()).expect("extracts");
    assert_eq!(tree.kind, ArchiveKind::Zip);
    assert!(!tree.single_file);
    assert_eq!(tree.files, 6);
    // modules, modules/vpc, envs, envs/prod, envs/prod/eu, assets, déjà
    assert_eq!(tree.directories, 7);
    assert_eq!(
        read(&tree.root.join("envs/prod/eu/main.tf")),
        b"module \"vpc\" { source = \"../../../modules/vpc\" }\n"
    );
    assert_eq!(read(&tree.root.join("assets/blob.bin")), big);
    assert_eq!(read(&tree.root.join("empty.tf")), b"");
    assert_eq!(tree.total_bytes, tree_bytes(&tree.root));
}

fn tree_bytes(root: &std::path::Path) -> u64 {
    list_tree(root)
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(root.join(p)).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[test]
fn a_tar_gz_with_a_root_entry_long_names_and_pax_paths_extracts() {
    let long_name = format!("{}/main.tf", "very-long-directory-name".repeat(6));
    let mut tar = tar::Builder::new(Vec::new());
    raw_tar_entry(&mut tar, b"./", tar::EntryType::Directory, b"");
    tar_file(&mut tar, "./main.tf", b"resource \"x\" \"y\" {}\n");
    // append_data writes a GNU long-name record for names over 100 bytes.
    tar_file(&mut tar, &long_name, b"# long\n");
    raw_tar_entry(
        &mut tar,
        b"PaxHeaders/1",
        tar::EntryType::XHeader,
        &pax_record("path", "pax/named.tf"),
    );
    raw_tar_entry(
        &mut tar,
        b"truncated-ustar-name",
        tar::EntryType::Regular,
        b"# pax\n",
    );
    raw_tar_entry(
        &mut tar,
        b"pax_global_header",
        tar::EntryType::XGlobalHeader,
        &pax_record("comment", "abc"),
    );
    // A pre-POSIX directory: a regular entry named with a trailing slash.
    raw_tar_entry(&mut tar, b"old-style-dir/", tar::EntryType::Regular, b"");
    tar_file(&mut tar, "old-style-dir/inside.tf", b"# old\n");
    let scratch = Scratch::with_upload(&gzip(&finish_tar(tar)));
    let tree =
        extract(&scratch.upload, &scratch.dest, &ExtractLimits::default()).expect("extracts");
    assert_eq!(tree.kind, ArchiveKind::TarGz);
    assert_eq!(tree.files, 4);
    assert_eq!(
        read(&tree.root.join("main.tf")),
        b"resource \"x\" \"y\" {}\n"
    );
    assert_eq!(read(&tree.root.join(&long_name)), b"# long\n");
    assert_eq!(read(&tree.root.join("pax/named.tf")), b"# pax\n");
    assert!(!tree.root.join("truncated-ustar-name").exists());
    assert!(tree.root.join("old-style-dir").is_dir());
    assert_eq!(read(&tree.root.join("old-style-dir/inside.tf")), b"# old\n");
}

#[test]
fn archives_made_by_the_system_tar_and_zip_tools_extract() {
    let source = tempfile::tempdir().expect("tempdir");
    let project = source.path().join("project");
    for (path, content) in [
        ("main.tf", "resource \"aws_s3_bucket\" \"b\" {}\n"),
        ("modules/net/vpc.tf", "resource \"aws_vpc\" \"v\" {}\n"),
        ("k8s/deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\n"),
    ] {
        let file = project.join(path);
        std::fs::create_dir_all(file.parent().unwrap_or(&project)).expect("mkdir");
        std::fs::write(&file, content).expect("write");
    }
    let tools: [(&str, Vec<&str>, &str, ArchiveKind); 3] = [
        (
            "tar",
            vec!["czf", "../upload.tgz", "."],
            "upload.tgz",
            ArchiveKind::TarGz,
        ),
        (
            "tar",
            vec!["cf", "../upload.tar", "."],
            "upload.tar",
            ArchiveKind::Tar,
        ),
        (
            "zip",
            vec!["-qr", "../upload.zip", "."],
            "upload.zip",
            ArchiveKind::Zip,
        ),
    ];
    for (tool, args, output, kind) in tools {
        let status = Command::new(tool)
            .args(&args)
            .current_dir(&project)
            .status();
        let Ok(status) = status else {
            eprintln!("skipping {tool}: not installed");
            continue;
        };
        assert!(status.success(), "{tool} {args:?}");
        let scratch = Scratch::with_upload(&read(&source.path().join(output)));
        let tree = extract(&scratch.upload, &scratch.dest, &ExtractLimits::default())
            .unwrap_or_else(|e| panic!("{output}: {e}"));
        assert_eq!(tree.kind, kind, "{output}");
        assert_eq!(tree.files, 3, "{output}");
        assert_eq!(
            read(&tree.root.join("modules/net/vpc.tf")),
            b"resource \"aws_vpc\" \"v\" {}\n"
        );
    }
}

#[test]
fn a_single_tf_file_becomes_the_template_and_can_be_named() {
    let content = "terraform {\n  required_version = \">= 1.5\"\n}\n# caf\u{e9}\n".repeat(2_000);
    let scratch = Scratch::with_upload(content.as_bytes());
    let tree =
        extract(&scratch.upload, &scratch.dest, &ExtractLimits::default()).expect("extracts");
    assert!(tree.single_file);
    assert_eq!(tree.kind, ArchiveKind::SingleTemplate);
    assert_eq!(tree.files, 1);
    assert_eq!(
        read(&tree.root.join(SINGLE_TEMPLATE_NAME)),
        content.as_bytes()
    );
    // Linked, not copied: the same file under a second name, readable by the tool's user; the
    // upload's own name is the caller's to remove.
    let template = std::fs::metadata(tree.root.join(SINGLE_TEMPLATE_NAME)).expect("template");
    let upload = std::fs::metadata(&scratch.upload).expect("the upload is left to the caller");
    assert_eq!(template.ino(), upload.ino());
    assert_eq!(template.mode() & 0o777, 0o644);

    for bad in ["", ".", "..", "a/b.tf", "../main.tf", "a\\b", "nul\0.tf"] {
        let error = name_single_template(&tree, bad);
        assert!(
            matches!(error, Err(ExtractError::InvalidTemplateName { .. })),
            "{bad:?}: {error:?}"
        );
    }
    let named = name_single_template(&tree, "main.tf").expect("renamed");
    assert_eq!(named, tree.root.join("main.tf"));
    assert_eq!(read(&named), content.as_bytes());
    assert_eq!(list_tree(&tree.root), ["main.tf"]);
}

#[test]
fn naming_is_refused_for_archives() {
    let scratch = Scratch::with_upload(&zip_of(&[ZipEntry::File("main.tf", b"x")]));
    let tree =
        extract(&scratch.upload, &scratch.dest, &ExtractLimits::default()).expect("extracts");
    assert!(matches!(
        name_single_template(&tree, "main.tf"),
        Err(ExtractError::NotSingleFile)
    ));
}

#[test]
fn an_empty_zip_extracts_to_an_empty_tree() {
    let scratch = Scratch::with_upload(&zip_of(&[]));
    assert!(read(&scratch.upload).starts_with(b"PK\x05\x06"));
    let tree =
        extract(&scratch.upload, &scratch.dest, &ExtractLimits::default()).expect("extracts");
    assert_eq!(
        (tree.kind, tree.files, tree.directories),
        (ArchiveKind::Zip, 0, 0)
    );
    assert!(list_tree(&tree.root).is_empty());
}

#[test]
fn a_well_compressed_large_text_file_is_not_a_bomb() {
    // Real templates compress 5-20:1; this one ~30:1 and 8 MiB: well past the 1 MiB threshold.
    let mut text = String::new();
    let mut i = 0u64;
    while text.len() < 8 << 20 {
        text.push_str(&format!(
            "resource \"aws_s3_bucket\" \"bucket_{i}\" {{\n  bucket = \"logs-{}\"\n  tags = {{ team = \"t{}\" }}\n}}\n",
            i.wrapping_mul(2_654_435_761) % 1_000_003,
            i % 97
        ));
        i += 1;
    }
    let mut tar = tar::Builder::new(Vec::new());
    tar_file(&mut tar, "big.tf", text.as_bytes());
    let upload = gzip(&finish_tar(tar));
    let ratio = text.len() as f64 / upload.len() as f64;
    assert!(ratio > 5.0 && ratio < 100.0, "ratio {ratio}");
    let scratch = Scratch::with_upload(&upload);
    let tree =
        extract(&scratch.upload, &scratch.dest, &ExtractLimits::default()).expect("extracts");
    assert_eq!(tree.total_bytes, text.len() as u64);
    let zip = zip_of(&[ZipEntry::File("big.tf", text.as_bytes())]);
    let scratch = Scratch::with_upload(&zip);
    extract(&scratch.upload, &scratch.dest, &ExtractLimits::default()).expect("extracts");
}
