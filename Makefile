# krgimage — build, test and image targets. Run as root on Debian: the
# deps targets install the host tools with apt-get when they are missing.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/krgimage/krgimage/internal/cli.version=$(VERSION)
OUT ?= out
RECIPE ?=
GOTEST_TIMEOUT ?= 28m
FUZZTIME ?= 30s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Host tools a build needs (the default recipe's TFTP tree takes the
# host's pxelinux, and its signed shim and GRUB network image for UEFI).
IMAGE_PKGS := debootstrap gpgv debian-archive-keyring ca-certificates kmod tar xz-utils bzip2 make \
	pxelinux syslinux-common shim-signed grub-efi-amd64-signed
# What the boot tests run: QEMU, a userspace NFS server, the three DHCP
# servers a recipe can configure (ISC dhcpd, Kea, dnsmasq), nginx for HTTP
# boots, busybox for the test roots, GNU cpio to check initramfs archives;
# for boot media, the boot loaders (isolinux, iPXE, Debian's GRUB for CDs), UEFI firmware for
# QEMU, xorriso and fsck.vfat to check the images.
BOOT_PKGS := qemu-system-x86 ipxe-qemu nfs-ganesha nfs-ganesha-vfs rpcbind busybox-static cpio iproute2 util-linux \
	isc-dhcp-server kea-dhcp4-server dnsmasq-base tftpd-hpa nginx-light pxelinux syslinux-common isolinux diffutils \
	ipxe grub-efi-amd64-signed ovmf xorriso dosfstools
# Everything the test suite runs for real (the snapshot tests: setfacl,
# getfattr, setcap, bsdtar, zstd; GNU tar and xz come with IMAGE_PKGS),
# and a C toolchain for the race detector, which needs cgo.
TEST_PKGS := $(IMAGE_PKGS) $(BOOT_PKGS) git acl attr libcap2-bin libarchive-tools zstd procps gcc libc6-dev

# Expensive test fixtures (a bootstrapped root, a kernel) shared by every
# test of a run, across packages.
export KRGIMAGE_TEST_CACHE ?= $(CURDIR)/.cache/test

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# apt_install installs the packages of $(1) that are not installed yet.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing with apt-get:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

# host_mtab links /etc/mtab to the kernel's mount table where a minimal
# system (a debootstrap, a container image) has none: nfs-ganesha finds
# each export's filesystem there. Every booted Debian system has the link.
define host_mtab
	@[ -e /etc/mtab ] || { echo "linking /etc/mtab to ../proc/self/mounts (nfs-ganesha reads it)"; $(SUDO) ln -s ../proc/self/mounts /etc/mtab; }
endef

.PHONY: help
help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps-image
deps-image: ## install the host tools a build needs (apt-get)
	$(call apt_install,$(IMAGE_PKGS))

.PHONY: deps-boot
deps-boot: ## install what boot-test runs: QEMU, nfs-ganesha, dhcpd, tftpd-hpa (apt-get)
	$(call apt_install,$(BOOT_PKGS))
	$(call host_mtab)

.PHONY: deps
deps: ## install everything the tests need (apt-get, Go modules)
	$(call apt_install,$(TEST_PKGS))
	$(call host_mtab)
	$(GO) mod download

.PHONY: build
build: ## build bin/krgimage
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/krgimage ./cmd/krgimage

.PHONY: image
image: deps-image build ## build the default recipe (or RECIPE=...) into ./out (or OUT=...)
	./bin/krgimage build $(RECIPE) -o $(OUT)

.PHONY: boot-test
boot-test: deps-boot build ## boot the image in ./out (or OUT=...) in QEMU over PXE and NFS to its login prompt
	./bin/krgimage boot-test $(OUT)

# The unit packages (all but tests/) run under the race detector, which
# makes their tests about 1.5 times slower (snapshot's, busy in Go code
# of its own, 4.6 times: 55 s -> 252 s); tests/ boots images through
# bin/krgimage and runs beside them, as one go test ./... did.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v -e '/tests$$' -e '/tests/')

.PHONY: test
test: deps build ## run every test, the root-only end-to-end ones included; unit packages with -race
	$(GO) vet ./...
	@export KRGIMAGE_TEST_STRICT=1; \
	$(GO) test -count=1 -timeout $(GOTEST_TIMEOUT) ./tests/... & e2e=$$!; \
	$(GO) test -race -count=1 -timeout $(GOTEST_TIMEOUT) $(UNIT_PKGS); unit=$$?; \
	wait $$e2e; e2e=$$?; \
	[ $$unit = 0 ] && [ $$e2e = 0 ]

.PHONY: test-e2e
test-e2e: deps build ## run the end-to-end tests only, verbosely
	$(GO) test -count=1 -timeout $(GOTEST_TIMEOUT) -v ./tests/

E2E_OUT ?= $(OUT)/e2e
.PHONY: e2e
e2e: deps build ## build and boot-test every shipped recipe this host can build; JSON summary in $(E2E_OUT)/summary.json
	$(GO) run ./tests/e2e -krgimage bin/krgimage -o $(E2E_OUT)

NIGHTLY_OUT ?= $(OUT)/nightly
.PHONY: nightly
nightly: deps build ## like e2e, over the previous run's outputs with the stage cache; RECIPE.report.txt per recipe in $(NIGHTLY_OUT)
	$(GO) run ./tests/e2e -krgimage bin/krgimage -o $(NIGHTLY_OUT) -nightly

.PHONY: e2e-kernel
e2e-kernel: deps build ## build a real kernel from Debian's linux-source with DESTDIR (minutes; not in make test)
	$(call apt_install,linux-source build-essential bc bison flex libelf-dev libssl-dev cpio rsync)
	KRGIMAGE_TEST_STRICT=1 $(GO) test -tags e2ekernel -count=1 -timeout 60m -v -run TestKernelFromDebianSources ./tests/

.PHONY: bench-initramfs
bench-initramfs: deps ## time and size of krgimage's initramfs vs mkinitramfs in the same image
	$(GO) test -count=1 -run XXX -bench NetbootInitramfs -benchtime 3x -timeout 30m ./initramfs/

.PHONY: media
media: build ## write a bootable ISO (CD or USB stick, BIOS and UEFI) of the build in ./out (or OUT=...)
	./bin/krgimage media $(OUT) --uefi

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2ekernel ./tests/
	GOOS=darwin $(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

.PHONY: clean
clean: ## remove bin/ and the default output
	rm -rf bin
	@if [ -d $(OUT) ] && ! grep -q /$(OUT)/ /proc/mounts; then rm -rf $(OUT); fi

BENCHTIME ?= 9x

.PHONY: bench-snapshot
bench-snapshot: deps ## snapshot/restore vs GNU tar + zstd -T0 on a Debian root: medians of per-run time and CPU ratios
	$(GO) test -run XXX -bench . -benchtime $(BENCHTIME) -timeout 30m ./snapshot/

.PHONY: bench
bench: bench-snapshot bench-cache bench-initramfs bench-bootstrap ## run every benchmark (about 20 minutes)

.PHONY: bench-cache
bench-cache: deps ## stage cache: rebuild times of the bookworm recipe (no change, late changes) as ratios of a cold build
	$(GO) test -count=1 -run XXX -bench Rebuild -benchtime 1x -timeout 30m ./tests/

.PHONY: bench-bootstrap
bench-bootstrap: deps ## native bootstrap vs debootstrap vs mmdebstrap (bookworm minbase, cold and warm package cache), as ratios
	$(call apt_install,mmdebstrap)
	$(GO) test -count=1 -run XXX -bench BootstrapMethods -benchtime 1x -timeout 90m ./bootstrap/
