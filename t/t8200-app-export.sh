#!/bin/sh
test_description='karapace app and bin: export an environment'"'"'s desktop apps and programs to the host; hostile desktop files'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'
if ! test_have_prereq SANDBOX; then
	test_skip_all "needs user namespaces and busybox-static"
fi
test_lazy_prereq VALIDATE 'command -v desktop-file-validate'

# A 1x1 PNG.
PNG=iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==

# desktop DIR ID LINES...: DIR/usr/share/applications/ID.desktop.
desktop() {
	mkdir -p "$1/usr/share/applications" &&
	f="$1/usr/share/applications/$2.desktop" && shift 2 &&
	printf '%s\n' "[Desktop Entry]" "Type=Application" "$@" >"$f"
}

# app_rootfs DIR: a busybox root with the program kp-hello, its desktop entry
# (id org.example.KpHello) and icons, and hostile entries and icons beside.
app_rootfs() {
	r=$1 &&
	fixture_busybox_rootfs "$r" &&
	mkdir -p "$r/usr/bin" "$r/usr/share/icons/hicolor/48x48/apps" "$r/usr/share/icons/hicolor/scalable/apps" &&
	printf '#!/bin/sh\necho "ran: $*" >/ran\necho "hello $*"\n' >"$r/usr/bin/kp-hello" &&
	chmod 755 "$r/usr/bin/kp-hello" &&
	desktop "$r" org.example.KpHello "Name=KP Hello" "Name[de]=KP Hallo" "Comment=says hello" \
		"Exec=kp-hello --greet %U" "Icon=kp-hello" "Categories=Utility;" "TryExec=/usr/bin/kp-hello" \
		"Path=/etc" "DBusActivatable=true" "X-Evil=1" "Actions=new;" "" "[Desktop Action new]" \
		"Name=New window" "Exec=kp-hello --new" &&
	echo "$PNG" | base64 -d >"$r/usr/share/icons/hicolor/48x48/apps/kp-hello.png" &&
	echo "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"16\" height=\"16\"/>" \
		>"$r/usr/share/icons/hicolor/scalable/apps/kp-hello.svg" &&
	echo env-secret >"$r/etc/shadow" &&
	# Exec that tries to leave the launcher with quotes and a ;.
	desktop "$r" evil-quote "Name=Q" "Exec=true\" ; touch /tmp/pwned ; \"" &&
	# A valid Exec whose command would write on the host: it runs inside.
	desktop "$r" evil-sh "Name=S" "Exec=sh -c \"echo x >$PWD/host-pwned\"" &&
	# A control character (an escape sequence) in Name.
	desktop "$r" evil-ctl "Name=a$(printf "\033")]0;x" "Exec=true" &&
	# Icons: a symlink to /etc/shadow, a path out of the icon directories,
	# an absolute path to a file that is no icon.
	ln -s /etc/shadow "$r/usr/share/icons/hicolor/48x48/apps/evil-link.png" &&
	desktop "$r" evil-link "Name=L" "Exec=true" "Icon=evil-link" &&
	desktop "$r" evil-dots "Name=D" "Exec=true" "Icon=../../../../../etc/shadow" &&
	desktop "$r" evil-abs "Name=A" "Exec=true" "Icon=/etc/shadow" &&
	# The desktop file itself a symlink to /etc/passwd.
	ln -s /etc/passwd "$r/usr/share/applications/evil-passwd.desktop" &&
	# Too large.
	desktop "$r" evil-big "Name=B" "Exec=true" &&
	head -c 70000 /dev/zero | tr "\0" "#" >>"$r/usr/share/applications/evil-big.desktop"
}

# scenario DIR: in DIR, as $run (empty, as_user or as_single_user): build,
# export, validate, run the exported Exec, unexport, bin export, hostile
# entries refused, rename, destroy.
scenario() {
	d=$1 &&
	mkdir -p "$d/home" && app_rootfs "$d/p/rootfs" && write_manifest "$d/p" ./rootfs &&
	{ test -z "$run" || chown -R "$KP_TEST_USER" "$d"; } &&
	(cd "$d" &&
	 k() { $run env HOME="$PWD/home" XDG_DATA_HOME="$PWD/home/data" KARAPACE_STORE="$PWD/st" karapace "$@"; } &&
	 k build p --name demo >id 2>/dev/null &&
	 apps=home/data/applications icons=home/data/icons/hicolor &&

	 k app export demo kp-hello >out &&
	 f=$apps/karapace-demo-kp-hello.desktop &&
	 test_path_is_file $f &&
	 test_path_is_file $icons/48x48/apps/karapace-demo-kp-hello.png &&
	 test_path_is_file $icons/scalable/apps/karapace-demo-kp-hello.svg &&
	 test_path_is_missing home/.local/share/applications &&
	 { test_have_prereq !VALIDATE || desktop-file-validate $f; } &&
	 grep -x "Name=KP Hello (demo)" $f && grep -x "Name\[de\]=KP Hallo (demo)" $f &&
	 grep -x "Icon=karapace-demo-kp-hello" $f &&
	 grep -x "X-Karapace-Env=$(cat id)" $f &&
	 ! grep -e "^TryExec" -e "^Path" -e "^DBusActivatable" -e "^X-Evil" $f &&
	 exe=$(command -v karapace) &&
	 grep -F -x "Exec=$exe --store \"$PWD/st\" exec $(cat id) -- kp-hello --greet %U" $f &&
	 grep -F -x "Exec=$exe --store \"$PWD/st\" exec $(cat id) -- kp-hello --new" $f &&

	 line=$(sed -n "s/^Exec=\(.*\) %U$/\1 world/p" $f) &&
	 $run env HOME="$PWD/home" sh -c "$line" >out &&
	 echo "hello --greet world" >expect && test_cmp expect out &&
	 k exec demo -- cat /ran >out && echo "ran: --greet world" >expect && test_cmp expect out &&

	 k --json app list >list && grep "\"kind\":\"app\",\"name\":\"kp-hello\"" list &&
	 k app export demo org.example.KpHello.desktop >/dev/null &&
	 test_path_is_file $apps/karapace-demo-org.example.KpHello.desktop &&
	 k app unexport demo org.example.KpHello >/dev/null &&
	 test_path_is_missing $apps/karapace-demo-org.example.KpHello.desktop &&
	 test_path_is_file $icons/48x48/apps/karapace-demo-kp-hello.png &&

	 k bin export demo kp-hello >/dev/null &&
	 test -x home/.local/bin/kp-hello &&
	 $run env HOME="$PWD/home" home/.local/bin/kp-hello a "b c" >out &&
	 echo "hello a b c" >expect && test_cmp expect out &&
	 echo "#!/bin/sh" >home/.local/bin/kp-mine && chmod 755 home/.local/bin/kp-mine &&
	 { test -z "$run" || chown "$KP_TEST_USER" home/.local/bin/kp-mine; } &&
	 cp -a home/.local/bin/kp-mine mine.before &&

	 for bad in \
		"evil-quote:evil-quote.desktop in environment demo is refused: Exec: Exec has" \
		"evil-ctl:evil-ctl.desktop in environment demo is refused: line 3: has a control character" \
		"evil-link:hicolor/48x48/apps/evil-link.png in environment demo is refused: a .png icon that is no PNG image" \
		"evil-dots:Icon=../../../../../etc/shadow in environment demo is refused: icon names are" \
		"evil-abs:/etc/shadow in environment demo is refused: an icon path must name a .png or .svg file" \
		"evil-passwd:evil-passwd.desktop in environment demo is refused: line 1: is not KEY=VALUE" \
		"evil-big:evil-big.desktop in the environment: is 7" \
		"../../x:invalid application \"../../x\"" \
		"nosuch:environment demo has no application \"nosuch\""; do
		app=${bad%%:*} msg=${bad#*:} &&
		ls -R home >before &&
		test_expect_code 1 k app export demo "$app" 2>err &&
		test_line_count = 1 err && grep -F "$msg" err &&
		ls -R home >after && test_cmp before after || return 1
	 done &&
	 ! grep -r -e env-secret -e "^root:" home st/meta/apps &&
	 test_expect_code 1 k bin export demo kp-mine 2>err &&
	 grep "environment demo has no program \"kp-mine\"" err &&
	 test_cmp mine.before home/.local/bin/kp-mine &&
	 test_expect_code 1 k bin export demo ../kp-hello 2>err &&
	 grep "invalid program \"../kp-hello\"" err &&

	 k app export demo evil-sh >/dev/null &&
	 s=$apps/karapace-demo-evil-sh.desktop &&
	 { test_have_prereq !VALIDATE || desktop-file-validate $s; } &&
	 grep -F "Exec=$exe --store \"$PWD/st\" exec $(cat id) -- sh -c " $s &&
	 { $run env HOME="$PWD/home" sh -c "$(sed -n "s/^Exec=//p" $s)" 2>/dev/null || true; } &&
	 test_path_is_missing host-pwned &&
	 k app unexport demo evil-sh >/dev/null &&

	 k exec demo -- sh -c "cp /usr/share/applications/evil-sh.desktop /usr/share/applications/up.desktop" &&
	 k app export demo up >/dev/null && k app unexport demo up >/dev/null &&
	 k exec demo -- rm /usr/share/applications/evil-sh.desktop &&
	 test_expect_code 1 k app export demo evil-sh 2>err &&
	 grep "has no application \"evil-sh\"" err &&

	 k rename demo demo2 >/dev/null &&
	 test_path_is_missing $f &&
	 test_path_is_missing $icons/48x48/apps/karapace-demo-kp-hello.png &&
	 f2=$apps/karapace-demo2-kp-hello.desktop &&
	 grep -x "Name=KP Hello (demo2)" $f2 && grep -x "Icon=karapace-demo2-kp-hello" $f2 &&
	 test_path_is_file $icons/48x48/apps/karapace-demo2-kp-hello.png &&
	 grep "bin unexport demo2 kp-hello" home/.local/bin/kp-hello &&
	 k app list >list && test_line_count = 2 list &&

	 k destroy demo2 >/dev/null &&
	 test_path_is_missing $f2 &&
	 test_path_is_missing $icons/48x48/apps/karapace-demo2-kp-hello.png &&
	 test_path_is_missing $icons/scalable/apps/karapace-demo2-kp-hello.svg &&
	 test_path_is_missing home/.local/bin/kp-hello &&
	 test_path_is_file home/.local/bin/kp-mine &&
	 k app list >list && test_must_be_empty list &&
	 test_path_is_missing st/meta/apps/$(cat id).json)
}

test_expect_success 'as root' '
	run= scenario root
'

test_expect_success ROOTLESS 'as an unprivileged user' '
	run=as_user scenario user
'

test_expect_success ROOTLESS_SINGLE 'as an unprivileged user without a subordinate range' '
	run=as_single_user KP_TEST_USER=$KP_TEST_USER_SINGLE scenario single
'

test_expect_success 'a file at the target that is not an export is left alone; usage errors' '
	mkdir -p o/home/.local/share/applications && app_rootfs o/p/rootfs && write_manifest o/p ./rootfs &&
	(cd o &&
	 export HOME="$PWD/home" KARAPACE_STORE="$PWD/st" &&
	 karapace build p --name mine >/dev/null 2>&1 &&
	 echo mine >home/.local/share/applications/karapace-mine-kp-hello.desktop &&
	 test_expect_code 1 karapace app export mine kp-hello 2>err &&
	 grep "karapace-mine-kp-hello.desktop: exists and is not an export of environment" err &&
	 echo mine >expect && test_cmp expect home/.local/share/applications/karapace-mine-kp-hello.desktop &&
	 test_path_is_missing home/.local/share/icons &&
	 karapace app list >list && test_must_be_empty list &&
	 test_expect_code 1 karapace app unexport mine kp-hello 2>err &&
	 grep "app \"kp-hello\" of environment mine is not exported" err &&
	 rm home/.local/share/applications/karapace-mine-kp-hello.desktop &&
	 karapace app export mine kp-hello >/dev/null &&
	 karapace build p --name other >/dev/null 2>&1 &&
	 test_path_is_missing home/.local/share/applications/karapace-mine-kp-hello.desktop &&
	 grep -x "Name=KP Hello (other)" home/.local/share/applications/karapace-other-kp-hello.desktop &&
	 test_expect_code 64 karapace app export mine &&
	 test_expect_code 64 karapace bin list)
'

# gui_image DIR: the Debian image (hard links) with kp-gui, a package
# carrying a program, its desktop entry and an icon, in its repository.
gui_image() {
	cp -al "$IMAGE" "$1" &&
	mkdir -p deb/DEBIAN deb/usr/bin deb/usr/share/icons/hicolor/48x48/apps &&
	printf '#!/bin/sh\necho "gui $*"\n' >deb/usr/bin/kp-gui && chmod 755 deb/usr/bin/kp-gui &&
	desktop deb kp-gui "Name=KP GUI" "Exec=kp-gui %f" "Icon=kp-gui" "Categories=Utility;" &&
	echo "$PNG" | base64 -d >deb/usr/share/icons/hicolor/48x48/apps/kp-gui.png &&
	printf "%s\n" "Package: kp-gui" "Version: 1.0" "Architecture: all" \
		"Maintainer: Karapace tests <t@example.invalid>" "Description: a desktop app" >deb/DEBIAN/control &&
	dpkg-deb --root-owner-group -Zgzip --build deb "$1/srv/kp-repo/kp-gui_1.0_all.deb" >/dev/null &&
	rm "$1/srv/kp-repo/Packages" &&
	(cd "$1/srv/kp-repo" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null)
}

test_expect_success DEBIAN_IMAGE '[gui] apps are installed at build, in the lock, and exported for a local environment' '
	IMAGE=$(fixture_debian_image) && gui_image gimg &&
	write_manifest g "$PWD/gimg" &&
	# No display here: the display integration apps imply is turned off.
	printf "[gui]\napps = [\"kp-gui\"]\n[integration]\nwayland = false\nx11 = false\n" >>g/karapace.toml &&
	(export HOME="$PWD/gh" KARAPACE_STORE="$PWD/gst" &&
	 karapace build g --name gui >id 2>err &&
	 grep -A1 "^name = \"kp-gui\"" g/karapace.lock >entry && grep "version = \"1.0\"" entry &&
	 f=gh/.local/share/applications/karapace-gui-kp-gui.desktop &&
	 test_path_is_file $f && test_path_is_file gh/.local/share/icons/hicolor/48x48/apps/karapace-gui-kp-gui.png &&
	 { test_have_prereq !VALIDATE || desktop-file-validate $f; } &&
	 sh -c "$(sed -n "s/^Exec=\(.*\) %f$/\1 doc.txt/p" $f)" >out &&
	 echo "gui doc.txt" >expect && test_cmp expect out &&
	 karapace --json inspect gui >j &&
	 sed -n "s/.*\"layers\":\[\([^]]*\)\].*/\1/p" j | tr -d "\"" | tr , " " >layers &&
	 test "$(wc -w <layers)" = 2 &&
	 karapace destroy gui >/dev/null &&
	 test_path_is_missing $f &&
	 test_path_is_missing gh/.local/share/icons/hicolor/48x48/apps/karapace-gui-kp-gui.png &&
	 karapace --json app list >list && echo "[]" >expect && test_cmp expect list)
'

test_expect_success DEBIAN_IMAGE 'a pulled environment'"'"'s apps are exported once trusted, and removed when trust is revoked' '
	(export HOME="$PWD/gh" KARAPACE_STORE="$PWD/gst" &&
	 kp-record-env g/karapace.lock $(cat layers) >rid && test_cmp id rid &&
	 f=gh/.local/share/applications/karapace-$(cut -c1-12 rid)-kp-gui.desktop &&
	 karapace --json app list >list && echo "[]" >expect && test_cmp expect list &&
	 karapace trust $(cat rid) >/dev/null &&
	 test_path_is_file $f &&
	 { test_have_prereq !VALIDATE || desktop-file-validate $f; } &&
	 karapace rename $(cat rid) pulled >/dev/null &&
	 test_path_is_missing $f &&
	 test_path_is_file gh/.local/share/applications/karapace-pulled-kp-gui.desktop &&
	 karapace trust --revoke pulled >/dev/null &&
	 test_path_is_missing gh/.local/share/applications/karapace-pulled-kp-gui.desktop &&
	 karapace --json app list >list && test_cmp expect list)
'

test_done
