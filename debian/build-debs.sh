#!/bin/sh
# debian/build-debs.sh OUT: builds the binary packages from a copy of this
# source tree in OUT/ioloop-host-VERSION/ (dpkg-buildpackage writes its
# results to the parent folder: OUT, not the tree a clone tracks), then runs
# lintian on them. VERSION is CMakeLists.txt's project(VERSION): the
# changelog is written here, never kept by hand.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: debian/build-debs.sh OUT}
version=$(sed -n 's/^project(ioloop-host VERSION \([0-9.]*\).*/\1/p' \
    "$src/CMakeLists.txt")
if [ -z "$version" ]; then
    echo "$src/CMakeLists.txt: no project(ioloop-host VERSION x.y.z)" >&2
    exit 1
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
tree="$out/ioloop-host-$version"
rm -rf "$tree" "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mkdir -p "$tree"
# Everything but build folders and git's own.
tar -C "$src" --anchored --exclude=./.git --exclude='./build*' --exclude=./Testing \
    -cf - . | tar -C "$tree" -xf -

# A native package: the version is the project's, without a revision.
cat > "$tree/debian/changelog" <<END
ioloop-host ($version) unstable; urgency=medium

  * Built from the ioloop-host source tree (make deb).

 -- $(sed -n 's/^Maintainer: //p' "$src/debian/control")  $(date -R)
END

(cd "$tree" && dpkg-buildpackage -us -uc -b)
lintian --fail-on error "$out"/ioloop-host_"$version"_*.changes
ls -l "$out"/*.deb
