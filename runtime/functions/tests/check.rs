//! The deploy-time check with the real Deno: a module that does not parse is refused with its file and line;
//! type errors and imports that cannot be fetched here are not the check's business.

mod common;

use functions::check::{check_syntax, CheckError};
use functions::{Bundle, BundleFile, NetPolicy, SupervisorConfig};

fn bundle(lib: &str) -> Bundle {
    let file = |name: &str, content: &str| BundleFile {
        name: name.into(),
        content: content.into(),
    };
    Bundle {
        entrypoint: "index.ts".into(),
        files: vec![
            file(
                "index.ts",
                "import { serve } from \"https://deno.land/std@0.168.0/http/server.ts\";\n\
                 import { a } from \"./lib/a.ts\";\n\
                 const wrong: number = \"a string\";\n\
                 serve(() => new Response(a + wrong));\n",
            ),
            file("lib/a.ts", lib),
        ],
        import_map: None,
    }
}

#[tokio::test]
async fn a_syntax_error_is_refused_with_its_file_and_line() {
    let dir = tempfile::Builder::new()
        .prefix("fn")
        .tempdir_in("/tmp")
        .unwrap();
    let config = SupervisorConfig::new(
        common::deno(),
        dir.path().to_path_buf(),
        NetPolicy::platform(None, &[]),
    );
    let broken = bundle("// a helper\nexport const a = 1;\nexport const = 2;\n");
    match check_syntax(&config, &broken).await {
        Err(CheckError::Syntax {
            file,
            line,
            message,
        }) => {
            assert_eq!((file.as_str(), line), ("lib/a.ts", Some(3)), "{message}");
            assert!(message.contains("SyntaxError"), "{message}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    let fine = bundle("export const a = 1;\n");
    check_syntax(&config, &fine).await.expect("parses");
    let mut outside = fine.clone();
    outside.files[1].name = "../a.ts".into();
    assert!(matches!(
        check_syntax(&config, &outside).await,
        Err(CheckError::Bundle(_))
    ));
    // the check leaves nothing behind
    let left = std::fs::read_dir(dir.path().join("checks"))
        .unwrap()
        .count();
    assert_eq!(left, 0);
}
