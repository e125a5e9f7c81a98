//! `cargo run -p warren-codegen`: rewrites the codec's generated files.

fn main() {
    let files = match warren_codegen::generate_from_codec_dir() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("warren-codegen: {e}");
            std::process::exit(1);
        }
    };
    for (path, contents) in files {
        let target = warren_codegen::codec_dir().join(path);
        if let Err(e) = std::fs::write(&target, contents) {
            eprintln!("warren-codegen: writing {}: {e}", target.display());
            std::process::exit(1);
        }
        println!("wrote {}", target.display());
    }
}
