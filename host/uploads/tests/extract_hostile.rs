//! Hostile uploads: each is refused with its own error variant, and leaves nothing behind, in
//! the destination or outside it.

mod common;

use common::*;
use tar::EntryType;
use toolgate_uploads::{ExtractError, ExtractLimits, extract};

/// Extracts `upload` in a fresh scratch area and returns the refusal, after checking nothing
/// was left behind.
fn refused(upload: &[u8], limits: &ExtractLimits) -> ExtractError {
    let scratch = Scratch::with_upload(upload);
    let result = extract(&scratch.upload, &scratch.dest, limits);
    scratch.assert_nothing_left();
    match result {
        Ok(tree) => panic!("accepted: {tree:?}"),
        Err(e) => {
            eprintln!("REFUSED: {e}");
            e
        }
    }
}

fn defaults() -> ExtractLimits {
    ExtractLimits::default()
}

#[test]
fn zip_slip_is_refused() {
    let zip = zip_of(&[
        ZipEntry::File("ok.tf", b"x"),
        ZipEntry::File("../x", b"evil"),
    ]);
    let error = refused(&zip, &defaults());
    assert!(
        matches!(&error, ExtractError::ParentComponent { entry } if entry == "../x"),
        "{error:?}"
    );
    let nested = zip_of(&[ZipEntry::File("a/b/../../../x", b"evil")]);
    assert!(matches!(
        refused(&nested, &defaults()),
        ExtractError::ParentComponent { .. }
    ));
}

#[test]
fn absolute_paths_are_refused_in_zip_and_tar() {
    let target = std::env::temp_dir().join("toolgate-uploads-absolute-test");
    let name = target.to_string_lossy().into_owned();
    let zip = zip_of(&[ZipEntry::File(&name, b"evil")]);
    let error = refused(&zip, &defaults());
    assert!(
        matches!(&error, ExtractError::AbsolutePath { entry } if *entry == name),
        "{error:?}"
    );

    let mut tar = tar::Builder::new(Vec::new());
    raw_tar_entry(&mut tar, name.as_bytes(), EntryType::Regular, b"evil");
    let error = refused(&gzip(&finish_tar(tar)), &defaults());
    assert!(
        matches!(&error, ExtractError::AbsolutePath { .. }),
        "{error:?}"
    );
    assert!(!target.exists());
}

#[test]
fn tar_slip_through_the_header_a_gnu_long_name_and_a_pax_path_is_refused() {
    let mut plain = tar::Builder::new(Vec::new());
    raw_tar_entry(&mut plain, b"../evil", EntryType::Regular, b"evil");
    let error = refused(&finish_tar(plain), &defaults());
    assert!(
        matches!(&error, ExtractError::ParentComponent { entry } if entry == "../evil"),
        "{error:?}"
    );

    let long_evil = format!("{}/../../../evil", "d".repeat(120));
    let mut long_name = tar::Builder::new(Vec::new());
    raw_tar_entry(
        &mut long_name,
        b"././@LongLink",
        EntryType::GNULongName,
        format!("{long_evil}\0").as_bytes(),
    );
    raw_tar_entry(&mut long_name, b"harmless", EntryType::Regular, b"evil");
    let error = refused(&gzip(&finish_tar(long_name)), &defaults());
    assert!(
        matches!(&error, ExtractError::ParentComponent { entry } if *entry == long_evil),
        "{error:?}"
    );

    let mut pax = tar::Builder::new(Vec::new());
    raw_tar_entry(
        &mut pax,
        b"PaxHeaders/x",
        EntryType::XHeader,
        &pax_record("path", "../pax-evil"),
    );
    raw_tar_entry(&mut pax, b"harmless", EntryType::Regular, b"evil");
    let error = refused(&gzip(&finish_tar(pax)), &defaults());
    assert!(
        matches!(&error, ExtractError::ParentComponent { entry } if entry == "../pax-evil"),
        "{error:?}"
    );
}

#[test]
fn symlink_entries_are_refused_in_zip_and_tar() {
    let zip = zip_of(&[ZipEntry::Symlink("link", "/etc/passwd")]);
    let error = refused(&zip, &defaults());
    assert!(
        matches!(&error, ExtractError::Symlink { entry } if entry == "link"),
        "{error:?}"
    );

    // The classic two-step escape: a link to outside, then a file written through it.
    let mut tar = tar::Builder::new(Vec::new());
    tar_link(&mut tar, "escape", EntryType::Symlink, "/tmp");
    tar_file(&mut tar, "escape/evil", b"evil");
    let error = refused(&gzip(&finish_tar(tar)), &defaults());
    assert!(
        matches!(&error, ExtractError::Symlink { entry } if entry == "escape"),
        "{error:?}"
    );
}

#[test]
fn hard_link_entries_are_refused() {
    let mut tar = tar::Builder::new(Vec::new());
    tar_file(&mut tar, "a.tf", b"x");
    tar_link(&mut tar, "b.tf", EntryType::Link, "/etc/shadow");
    let error = refused(&gzip(&finish_tar(tar)), &defaults());
    assert!(
        matches!(&error, ExtractError::HardLink { entry } if entry == "b.tf"),
        "{error:?}"
    );
}

#[test]
fn device_and_fifo_entries_are_refused() {
    for (kind, expected) in [
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Fifo, "fifo"),
    ] {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_path("dev/null-ish").expect("path");
        header.set_size(0);
        header.set_mode(0o666);
        header.set_device_major(1).expect("major");
        header.set_device_minor(3).expect("minor");
        header.set_cksum();
        tar.append(&header, &[][..]).expect("append");
        let error = refused(&finish_tar(tar), &defaults());
        assert!(
            matches!(&error, ExtractError::SpecialFile { entry, kind } if entry == "dev/null-ish" && *kind == expected),
            "{error:?}"
        );
    }
}

#[test]
fn a_zip_bomb_is_refused_by_its_declared_ratio() {
    let zeros = vec![0u8; 20 << 20];
    let zip = zip_of(&[ZipEntry::File("bomb.tf", &zeros)]);
    assert!(
        zip.len() < 100_000,
        "the bomb should compress well: {}",
        zip.len()
    );
    let error = refused(&zip, &defaults());
    assert!(
        matches!(&error, ExtractError::EntryRatioTooHigh { entry, limit: 100 } if entry == "bomb.tf"),
        "{error:?}"
    );
}

#[test]
fn a_zip_bomb_that_lies_about_its_size_is_stopped_on_the_actual_bytes() {
    let zeros = vec![0u8; 20 << 20];
    let mut zip = zip_of(&[ZipEntry::File("liar.tf", &zeros)]);
    // Declare 1,000 bytes uncompressed in both headers.
    patch_zip_headers(&mut zip, 22, 24, &1_000u32.to_le_bytes());
    // The zip crate stops reading at the declared size and reports the excess; had it not, our
    // own count of actual bytes (the ratio check past 1 MiB, then `max_file_bytes`) would.
    for limits in [
        defaults(),
        ExtractLimits {
            max_ratio: 1_000_000,
            ..defaults()
        },
    ] {
        let error = refused(&zip, &limits);
        assert!(
            matches!(&error, ExtractError::Corrupt { entry: Some(entry), reason } if entry == "liar.tf" && reason.contains("declared")),
            "{error:?}"
        );
    }
}

#[test]
fn many_small_well_compressed_entries_trip_the_overall_ratio() {
    // Each entry stays under the 1 MiB per-entry threshold; together they expand ~1000:1.
    let zeros = vec![0u8; 900 << 10];
    let names: Vec<String> = (0..20).map(|i| format!("part{i}.tf")).collect();
    let entries: Vec<ZipEntry<'_>> = names.iter().map(|n| ZipEntry::File(n, &zeros)).collect();
    let error = refused(&zip_of(&entries), &defaults());
    assert!(
        matches!(error, ExtractError::ArchiveRatioTooHigh { limit: 100 }),
        "{error:?}"
    );
}

#[test]
fn a_tar_gz_bomb_behind_incompressible_data_trips_the_entry_ratio() {
    // The noise keeps the overall ratio low, so only the per-entry estimate can catch the bomb.
    let mut tar = tar::Builder::new(Vec::new());
    tar_file(&mut tar, "noise.bin", &noise(5 << 20, 7));
    tar_file(&mut tar, "bomb.tf", &vec![0u8; 40 << 20]);
    let error = refused(&gzip(&finish_tar(tar)), &defaults());
    assert!(
        matches!(&error, ExtractError::EntryRatioTooHigh { entry, .. } if entry == "bomb.tf"),
        "{error:?}"
    );

    let mut single = tar::Builder::new(Vec::new());
    tar_file(&mut single, "bomb.tf", &vec![0u8; 20 << 20]);
    let error = refused(&gzip(&finish_tar(single)), &defaults());
    assert!(
        matches!(
            error,
            ExtractError::ArchiveRatioTooHigh { .. } | ExtractError::EntryRatioTooHigh { .. }
        ),
        "{error:?}"
    );
}

#[test]
fn a_tar_with_100000_entries_is_refused_at_the_file_limit() {
    let mut tar = tar::Builder::new(Vec::new());
    for i in 0..100_000 {
        tar_file(&mut tar, &format!("f{i}"), b"");
    }
    let upload = gzip(&finish_tar(tar));
    let error = refused(&upload, &defaults());
    assert!(
        matches!(error, ExtractError::TooManyFiles { limit: 20_000 }),
        "{error:?}"
    );
}

#[test]
fn a_zip_with_more_entries_than_allowed_is_refused_before_extraction() {
    let names: Vec<String> = (0..11).map(|i| format!("f{i}")).collect();
    let entries: Vec<ZipEntry<'_>> = names.iter().map(|n| ZipEntry::File(n, b"x")).collect();
    let limits = ExtractLimits {
        max_files: 10,
        ..defaults()
    };
    assert!(matches!(
        refused(&zip_of(&entries), &limits),
        ExtractError::TooManyFiles { limit: 10 }
    ));
    // Implied parent directories count too: 5 files in 5 directories is 10 entries.
    let nested: Vec<String> = (0..6).map(|i| format!("d{i}/f")).collect();
    let entries: Vec<ZipEntry<'_>> = nested.iter().map(|n| ZipEntry::File(n, b"x")).collect();
    assert!(matches!(
        refused(&zip_of(&entries), &limits),
        ExtractError::TooManyFiles { limit: 10 }
    ));
}

#[test]
fn a_zip_declaring_more_entries_than_allowed_is_refused_from_its_end_record() {
    // 25,000 empty entries: refused from the end record, before the zip crate indexes them.
    let names: Vec<String> = (0..25_000).map(|i| format!("{i}")).collect();
    let entries: Vec<ZipEntry<'_>> = names.iter().map(|n| ZipEntry::Stored(n, b"")).collect();
    let error = refused(&zip_of(&entries), &defaults());
    assert!(
        matches!(error, ExtractError::TooManyFiles { limit: 20_000 }),
        "{error:?}"
    );
}

#[test]
fn binary_junk_and_empty_uploads_are_refused() {
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    assert!(matches!(
        refused(&junk, &defaults()),
        ExtractError::NotAnArchiveOrTemplate
    ));
    assert!(matches!(
        refused(&noise(100_000, 3), &defaults()),
        ExtractError::NotAnArchiveOrTemplate
    ));
    // Text with a NUL in it is binary too.
    assert!(matches!(
        refused(b"variable \"x\" {}\n\0", &defaults()),
        ExtractError::NotAnArchiveOrTemplate
    ));
    assert!(matches!(
        refused(b"", &defaults()),
        ExtractError::EmptyUpload
    ));
}

#[test]
fn truncated_and_corrupt_zips_are_refused() {
    let zip = zip_of(&[
        ZipEntry::File("a.tf", &noise(50_000, 1)),
        ZipEntry::File("b.tf", &noise(50_000, 2)),
    ]);
    let half = &zip[..zip.len() / 2];
    assert!(matches!(
        refused(half, &defaults()),
        ExtractError::Corrupt { .. }
    ));
    let without_last_byte = &zip[..zip.len() - 1];
    assert!(matches!(
        refused(without_last_byte, &defaults()),
        ExtractError::Corrupt { .. }
    ));
    // Flip content bytes of the first entry: the CRC-32 or the deflate stream catches it.
    let mut flipped = zip.clone();
    for byte in &mut flipped[100..200] {
        *byte ^= 0x55;
    }
    assert!(matches!(
        refused(&flipped, &defaults()),
        ExtractError::Corrupt { .. }
    ));
}

#[test]
fn truncated_tar_gz_and_tar_are_refused() {
    let mut tar = tar::Builder::new(Vec::new());
    tar_file(&mut tar, "a.tf", &noise(50_000, 1));
    tar_file(&mut tar, "b.tf", &noise(50_000, 2));
    let tar = finish_tar(tar);
    let tar_gz = gzip(&tar);
    for cut in [tar_gz.len() / 2, tar_gz.len() - 4, 20] {
        let error = refused(&tar_gz[..cut], &defaults());
        assert!(
            matches!(error, ExtractError::Corrupt { .. }),
            "cut at {cut}: {error:?}"
        );
    }
    // Cut in the middle of an entry, and cut exactly at an entry boundary (end blocks missing).
    let boundary = 512 + 50_000usize.div_ceil(512) * 512;
    for cut in [tar.len() / 2, boundary] {
        let error = refused(&tar[..cut], &defaults());
        assert!(
            matches!(error, ExtractError::Corrupt { .. }),
            "cut at {cut}: {error:?}"
        );
    }
}

#[test]
fn duplicate_and_conflicting_paths_are_refused() {
    let zip = zip_of(&[
        ZipEntry::File("a/b.tf", b"1"),
        ZipEntry::File("a//b.tf", b"2"),
    ]);
    let error = refused(&zip, &defaults());
    assert!(
        matches!(&error, ExtractError::DuplicatePath { entry } if entry == "a//b.tf"),
        "{error:?}"
    );

    // The same raw name twice in the central directory.
    let mut raw = zip_of(&[ZipEntry::File("a.tf", b"1"), ZipEntry::File("b.tf", b"2")]);
    let positions = find_signature(&raw, ZIP_CENTRAL_HEADER);
    let second = positions[1] + 46;
    raw[second..second + 4].copy_from_slice(b"a.tf");
    let error = refused(&raw, &defaults());
    assert!(
        matches!(&error, ExtractError::DuplicatePath { entry } if entry == "a.tf"),
        "{error:?}"
    );

    let mut tar = tar::Builder::new(Vec::new());
    tar_file(&mut tar, "main.tf", b"1");
    tar_file(&mut tar, "main.tf", b"2");
    let error = refused(&finish_tar(tar), &defaults());
    assert!(
        matches!(&error, ExtractError::DuplicatePath { entry } if entry == "main.tf"),
        "{error:?}"
    );

    let file_then_child = zip_of(&[ZipEntry::File("a", b"1"), ZipEntry::File("a/b", b"2")]);
    assert!(matches!(
        refused(&file_then_child, &defaults()),
        ExtractError::PathConflict { .. }
    ));
    let dir_then_file = zip_of(&[ZipEntry::Dir("a/"), ZipEntry::File("a", b"2")]);
    assert!(matches!(
        refused(&dir_then_file, &defaults()),
        ExtractError::PathConflict { .. }
    ));
}

#[test]
fn bad_names_are_refused_by_variant() {
    let non_utf8 = zip_of(&[ZipEntry::RawName(b"caf\xe9.tf", b"x")]);
    assert!(matches!(
        refused(&non_utf8, &defaults()),
        ExtractError::NonUtf8Name { .. }
    ));
    let nul = zip_of(&[ZipEntry::File("a\0b.tf", b"x")]);
    assert!(matches!(
        refused(&nul, &defaults()),
        ExtractError::NulInName { .. }
    ));
    let backslash = zip_of(&[ZipEntry::File("..\\..\\x", b"x")]);
    assert!(matches!(
        refused(&backslash, &defaults()),
        ExtractError::BackslashInName { .. }
    ));
    let deep = format!("{}f.tf", "d/".repeat(40));
    let error = refused(&zip_of(&[ZipEntry::File(&deep, b"x")]), &defaults());
    assert!(
        matches!(
            error,
            ExtractError::TooDeep {
                depth: 41,
                limit: 32,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn size_limits_hold_for_files_and_totals() {
    let small_files = ExtractLimits {
        max_file_bytes: 1_000,
        ..defaults()
    };
    let zip = zip_of(&[ZipEntry::Stored("big.tf", &[b'x'; 1_001])]);
    let error = refused(&zip, &small_files);
    assert!(
        matches!(&error, ExtractError::FileTooLarge { entry, limit: 1_000 } if entry == "big.tf"),
        "{error:?}"
    );

    let small_total = ExtractLimits {
        max_total_bytes: 1_500,
        ..defaults()
    };
    let mut tar = tar::Builder::new(Vec::new());
    tar_file(&mut tar, "a.tf", &[b'a'; 1_000]);
    tar_file(&mut tar, "b.tf", &[b'b'; 1_000]);
    let error = refused(&gzip(&finish_tar(tar)), &small_total);
    assert!(
        matches!(error, ExtractError::TotalTooLarge { limit: 1_500 }),
        "{error:?}"
    );

    let error = refused(&[b'x'; 2_000], &small_files);
    assert!(
        matches!(error, ExtractError::FileTooLarge { .. }),
        "{error:?}"
    );
}

#[test]
fn unsupported_zip_features_are_refused() {
    let mut bzip2 = zip_of(&[ZipEntry::Stored("a.tf", b"resource {}")]);
    patch_zip_headers(&mut bzip2, 8, 10, &12u16.to_le_bytes());
    let error = refused(&bzip2, &defaults());
    assert!(
        matches!(&error, ExtractError::Unsupported { entry, .. } if entry == "a.tf"),
        "{error:?}"
    );

    let mut encrypted = zip_of(&[ZipEntry::Stored("a.tf", b"resource {}")]);
    patch_zip_headers(&mut encrypted, 6, 8, &1u16.to_le_bytes());
    let error = refused(&encrypted, &defaults());
    assert!(
        matches!(&error, ExtractError::Unsupported { entry, .. } if entry == "a.tf"),
        "{error:?}"
    );
}

#[test]
fn tar_metadata_records_are_bounded_before_they_are_read() {
    let mut tar = tar::Builder::new(Vec::new());
    raw_tar_entry(
        &mut tar,
        b"././@LongLink",
        EntryType::GNULongName,
        &vec![b'a'; 10_000],
    );
    raw_tar_entry(&mut tar, b"x", EntryType::Regular, b"x");
    let error = refused(&gzip(&finish_tar(tar)), &defaults());
    assert!(
        matches!(error, ExtractError::MetadataTooLarge { len: 10_000, .. }),
        "{error:?}"
    );

    let mut size = tar::Builder::new(Vec::new());
    raw_tar_entry(
        &mut size,
        b"PaxHeaders/x",
        EntryType::XHeader,
        &pax_record("size", "1"),
    );
    raw_tar_entry(&mut size, b"x", EntryType::Regular, b"xxxx");
    assert!(matches!(
        refused(&finish_tar(size), &defaults()),
        ExtractError::Unsupported { .. }
    ));

    let mut file_named_as_dir = tar::Builder::new(Vec::new());
    raw_tar_entry(&mut file_named_as_dir, b"dir/", EntryType::Regular, b"data");
    let error = refused(&finish_tar(file_named_as_dir), &defaults());
    assert!(
        matches!(&error, ExtractError::Corrupt { entry: Some(e), .. } if e == "dir/"),
        "{error:?}"
    );

    let mut dangling = tar::Builder::new(Vec::new());
    raw_tar_entry(
        &mut dangling,
        b"PaxHeaders/x",
        EntryType::XHeader,
        &pax_record("path", "a.tf"),
    );
    assert!(matches!(
        refused(&finish_tar(dangling), &defaults()),
        ExtractError::Corrupt { .. }
    ));
}

#[test]
fn an_existing_destination_is_refused_and_left_untouched() {
    let scratch = Scratch::with_upload(b"resource \"x\" \"y\" {}\n");
    std::fs::create_dir(&scratch.dest).expect("mkdir");
    std::fs::write(scratch.dest.join("keep"), b"mine").expect("write");
    let result = extract(&scratch.upload, &scratch.dest, &defaults());
    assert!(
        matches!(result, Err(ExtractError::DestinationExists { .. })),
        "{result:?}"
    );
    assert_eq!(
        std::fs::read(scratch.dest.join("keep")).ok().as_deref(),
        Some(&b"mine"[..])
    );
}
