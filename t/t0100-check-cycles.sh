#!/bin/sh
test_description='tools/check-cycles: no import cycle between modules (docs/architecture.md)'
. ./lib.sh

CHECK="$TEST_DIRECTORY/../tools/check-cycles"

# tree DIR: an empty checkout shape (the three crates' src/ directories) with
# a lib.rs that re-exports as libkp's does.
tree() {
	mkdir -p "$1/libkp/src/store" "$1/libkp/src/env" "$1/plumbing/src/bin" "$1/porcelain/src/cmd" &&
	printf 'pub mod hash;\npub mod store;\npub mod env;\npub use store::Store;\n' >"$1/libkp/src/lib.rs" &&
	printf 'pub struct ObjectId;\n' >"$1/libkp/src/hash.rs" &&
	printf 'use crate::hash::ObjectId;\npub struct Store;\n' >"$1/libkp/src/store/mod.rs" &&
	printf 'use crate::Store;\nuse self::record::EnvRecord;\n' >"$1/libkp/src/env/mod.rs" &&
	printf 'use super::super::hash;\npub struct EnvRecord;\n' >"$1/libkp/src/env/record.rs" &&
	printf 'fn main() {}\n' >"$1/plumbing/src/lib.rs" &&
	printf 'mod cli;\nmod cmd;\nmod ctx;\n' >"$1/porcelain/src/main.rs" &&
	printf 'use crate::ctx::Ctx;\nuse crate::cmd;\n' >"$1/porcelain/src/cli.rs" &&
	printf 'pub struct Ctx;\n' >"$1/porcelain/src/ctx.rs" &&
	printf 'use crate::ctx::{Ctx, Fail};\n' >"$1/porcelain/src/cmd/mod.rs"
}

test_expect_success 'the checkout has no import cycle between modules' '
	"$CHECK" >out 2>&1 || { cat out; false; }
'

test_expect_success 'a tree without cycles passes; --graph lists its arrows' '
	tree ok &&
	"$CHECK" ok &&
	"$CHECK" --graph ok >graph &&
	grep "^libkp/src: env -> store " graph &&
	grep "^libkp/src: env -> hash " graph &&
	grep "^porcelain/src: cli -> cmd " graph &&
	! grep "env -> record" graph
'

test_expect_success 'a planted use crate:: line is caught and printed as a path' '
	tree plant &&
	echo "use crate::env::EnvRecord;" >>plant/libkp/src/hash.rs &&
	test_expect_code 1 "$CHECK" plant >out &&
	grep "^check-cycles: libkp/src: import cycle: env -> hash -> env$" out &&
	grep "hash -> env at libkp/src/hash.rs:2$" out
'

test_expect_success 'a use tree in braces, a super:: out of a module and a re-export count' '
	tree braces &&
	printf "use crate::{\n    hash::ObjectId,\n    env::{self, EnvRecord},\n};\n" >>braces/libkp/src/store/mod.rs &&
	test_expect_code 1 "$CHECK" braces >out &&
	grep "import cycle: env -> store -> env$" out &&
	tree up &&
	printf "pub struct Up;\n" >up/libkp/src/env/deep.rs &&
	printf "fn f() { super::super::store::Store; }\n" >>up/libkp/src/env/deep.rs &&
	printf "fn g() -> crate::env::X {}\n" >>up/libkp/src/store/mod.rs &&
	test_expect_code 1 "$CHECK" up >out &&
	grep "env -> store at libkp/src/env/" out
'

test_expect_success 'a cycle through three modules is printed whole' '
	tree three &&
	printf "pub mod a;\npub mod b;\npub mod c;\n" >three/porcelain/src/main.rs &&
	echo "use crate::b::X;" >three/porcelain/src/a.rs &&
	echo "fn f() { crate::c::go() }" >three/porcelain/src/b.rs &&
	echo "use crate::a;" >three/porcelain/src/c.rs &&
	test_expect_code 1 "$CHECK" three >out &&
	grep "^check-cycles: porcelain/src: import cycle: a -> b -> c -> a$" out
'

test_expect_success 'the porcelain dispatcher and its commands may not share types both ways' '
	tree porc &&
	echo "use crate::cli::Fail;" >>porc/porcelain/src/cmd/mod.rs &&
	test_expect_code 1 "$CHECK" porc >out &&
	grep "import cycle: cli -> cmd -> cli$" out
'

test_expect_success 'comments, strings and test modules are not arrows' '
	tree quiet &&
	cat >>quiet/libkp/src/hash.rs <<-\EOF &&
	// use crate::env::EnvRecord;
	/* crate::env::x */
	const S: &str = "crate::env::y";
	#[cfg(test)]
	mod tests {
	    use crate::env::EnvRecord;
	}
	#[cfg(test)]
	mod more;
	EOF
	echo "use crate::env::EnvRecord;" >quiet/libkp/src/more.rs &&
	"$CHECK" quiet
'

test_expect_success 'a missing crate directory is a usage error' '
	mkdir empty &&
	test_expect_code 2 "$CHECK" empty 2>err &&
	grep "empty/libkp/src: no such directory" err
'

test_done
