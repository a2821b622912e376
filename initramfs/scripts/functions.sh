# krgimage initramfs: parsing the kernel command line and DHCP leases.
# Sourced by /init; krgimage's tests source it under busybox on the host.
# Everything is POSIX sh as busybox runs it, so it also works under the
# 2.6-era kernels of the Kerrighed howto.

krg_log() {
	echo "krgimage-initramfs: $*"
}

# krg_parse_cmdline CMDLINE
# Sets KRG_ROOT, KRG_NFSROOT, KRG_IP, KRG_BOOTIF, KRG_INIT, KRG_MODE (ro, rw
# or empty) and KRG_DEBUG from the kernel command line.
krg_parse_cmdline() {
	KRG_ROOT= KRG_NFSROOT= KRG_IP= KRG_BOOTIF= KRG_INIT=/sbin/init KRG_MODE= KRG_DEBUG=
	for arg in $1; do
		case "$arg" in
		root=*) KRG_ROOT=${arg#root=} ;;
		nfsroot=*) KRG_NFSROOT=${arg#nfsroot=} ;;
		ip=* | nfsaddrs=*) KRG_IP=${arg#*=} ;;
		BOOTIF=*) KRG_BOOTIF=${arg#BOOTIF=} ;;
		init=*) KRG_INIT=${arg#init=} ;;
		ro) KRG_MODE=ro ;;
		rw) KRG_MODE=rw ;;
		krgimage.debug | krgimage.debug=1 | krgimage.debug=y) KRG_DEBUG=1 ;;
		esac
	done
}

# krg_parse_nfsroot SPEC
# SPEC is the kernel's nfsroot=[<server-ip>:]<root-dir>[,<nfs-options>], or
# a DHCP root-path in the same form. Sets KRG_NFS_SERVER, KRG_NFS_PATH and
# KRG_NFS_OPTS.
krg_parse_nfsroot() {
	_spec=$1
	KRG_NFS_SERVER= KRG_NFS_PATH= KRG_NFS_OPTS=
	case "$_spec" in
	*,*)
		KRG_NFS_OPTS=${_spec#*,}
		_spec=${_spec%%,*}
		;;
	esac
	case "$_spec" in
	*:*)
		KRG_NFS_SERVER=${_spec%%:*}
		KRG_NFS_PATH=${_spec#*:}
		;;
	*) KRG_NFS_PATH=$_spec ;;
	esac
}

# krg_parse_ip VALUE
# VALUE is ip=dhcp (or on, any, bootp, both, rarp), ip=off, or
# <client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>:<dns0-ip>:<dns1-ip>.
# Sets KRG_IP_AUTO (dhcp, static or off) and the KRG_IP_* fields.
krg_parse_ip() {
	KRG_IP_CLIENT= KRG_IP_SERVER= KRG_IP_GW= KRG_IP_MASK= KRG_IP_HOST= KRG_IP_DEV= KRG_IP_AUTO= KRG_IP_DNS0= KRG_IP_DNS1=
	case "$1" in
	"" | dhcp | bootp | rarp | both | on | any)
		KRG_IP_AUTO=dhcp
		return
		;;
	off | none)
		KRG_IP_AUTO=off
		return
		;;
	esac
	_ifs=$IFS
	IFS=:
	# shellcheck disable=SC2086
	set -- $1
	IFS=$_ifs
	KRG_IP_CLIENT=$1 KRG_IP_SERVER=$2 KRG_IP_GW=$3 KRG_IP_MASK=$4 KRG_IP_HOST=$5 KRG_IP_DEV=$6 KRG_IP_AUTO=$7
	KRG_IP_DNS0=${8:-} KRG_IP_DNS1=${9:-}
	case "$KRG_IP_AUTO" in
	off | none | static) KRG_IP_AUTO=static ;;
	"")
		# No protocol given: a client address means a static setup.
		if [ -n "$KRG_IP_CLIENT" ]; then KRG_IP_AUTO=static; else KRG_IP_AUTO=dhcp; fi
		;;
	*) KRG_IP_AUTO=dhcp ;;
	esac
	if [ "$KRG_IP_AUTO" = static ] && [ -z "$KRG_IP_CLIENT" ]; then
		KRG_IP_AUTO=dhcp
	fi
}

# krg_bootif_mac BOOTIF prints the MAC address pxelinux's "IPAPPEND 2"
# passes as BOOTIF=01-52-54-00-12-34-56 (hardware type 01, Ethernet).
krg_bootif_mac() {
	_m=${1#01-}
	echo "$_m" | tr 'A-F-' 'a-f:'
}

# krg_mask_bits NETMASK prints the prefix length of a dotted netmask, or of
# a prefix length given as such.
krg_mask_bits() {
	case "$1" in
	*.*) ;;
	"")
		echo 24
		return
		;;
	*)
		echo "$1"
		return
		;;
	esac
	_bits=0
	_ifs=$IFS
	IFS=.
	for _o in $1; do
		case "$_o" in
		255) _bits=$((_bits + 8)) ;;
		254) _bits=$((_bits + 7)) ;;
		252) _bits=$((_bits + 6)) ;;
		248) _bits=$((_bits + 5)) ;;
		240) _bits=$((_bits + 4)) ;;
		224) _bits=$((_bits + 3)) ;;
		192) _bits=$((_bits + 2)) ;;
		128) _bits=$((_bits + 1)) ;;
		esac
	done
	IFS=$_ifs
	echo "$_bits"
}

# krg_quote VALUE prints VALUE single-quoted for the shell: DHCP answers
# come from the network and are sourced as shell code.
krg_quote() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# krg_resolve_root decides which NFS server and path to mount from what
# the command line, the ip= setting and the DHCP lease (KRG_DHCP_*) say:
# the command line wins, then DHCP's root-path (option 17), then the
# server addresses DHCP or ip= give. KRG_MY_IP replaces %s in the path, as
# the kernel does. Sets KRG_NFS_SERVER, KRG_NFS_PATH and KRG_NFS_OPTS.
krg_resolve_root() {
	_rp_server= _rp_path= _rp_opts=
	if [ -n "${KRG_DHCP_ROOTPATH:-}" ]; then
		krg_parse_nfsroot "$KRG_DHCP_ROOTPATH"
		_rp_server=$KRG_NFS_SERVER _rp_path=$KRG_NFS_PATH _rp_opts=$KRG_NFS_OPTS
	fi
	krg_parse_nfsroot "${KRG_NFSROOT:-}"
	[ -n "$KRG_NFS_SERVER" ] || KRG_NFS_SERVER=$_rp_server
	[ -n "$KRG_NFS_SERVER" ] || KRG_NFS_SERVER=${KRG_IP_SERVER:-}
	if [ -z "$KRG_NFS_SERVER" ] && [ -n "${KRG_DHCP_SIADDR:-}" ] && [ "$KRG_DHCP_SIADDR" != 0.0.0.0 ]; then
		KRG_NFS_SERVER=$KRG_DHCP_SIADDR
	fi
	[ -n "$KRG_NFS_SERVER" ] || KRG_NFS_SERVER=${KRG_DHCP_SERVERID:-}
	[ -n "$KRG_NFS_PATH" ] || KRG_NFS_PATH=$_rp_path
	[ -n "$KRG_NFS_PATH" ] || KRG_NFS_PATH=/tftpboot/%s
	[ -n "$KRG_NFS_OPTS" ] || KRG_NFS_OPTS=$_rp_opts
	case "$KRG_NFS_PATH" in
	*%s*) KRG_NFS_PATH=$(echo "$KRG_NFS_PATH" | sed "s|%s|${KRG_MY_IP:-}|g") ;;
	esac
}

# krg_has_opt LIST NAME... succeeds when the comma-separated LIST sets one
# of the NAMEs (as NAME or NAME=value).
krg_has_opt() {
	_list=,$1,
	shift
	for _n in "$@"; do
		case "$_list" in
		*,"$_n",* | *,"$_n"=*) return 0 ;;
		esac
	done
	return 1
}

# krg_mount_options prints the mount options for the NFS root: the mode
# (ro by default, rw on the command line or in the image's settings), the
# NFS version (vers= in nfsroot's options, else KRG_DEFAULT_NFS_VERSION),
# nolock for NFSv3 as the howto advises, the image's defaults, the
# command line's options and the server address the kernel needs.
krg_mount_options() {
	_mode=${KRG_MODE:-${KRG_DEFAULT_MODE:-ro}}
	_opts=$_mode
	_vers=${KRG_DEFAULT_NFS_VERSION:-3}
	for _o in $(echo "${KRG_NFS_OPTS:-}" | tr ',' ' '); do
		case "$_o" in
		vers=* | nfsvers=*) _vers=${_o#*=} ;;
		esac
	done
	if ! krg_has_opt "${KRG_NFS_OPTS:-}" vers nfsvers; then
		_opts=$_opts,vers=$_vers
	fi
	case "$_vers" in
	2 | 3*)
		if ! krg_has_opt "${KRG_NFS_OPTS:-},${KRG_DEFAULT_NFS_OPTIONS:-}" lock nolock; then
			_opts=$_opts,nolock
		fi
		;;
	esac
	[ -z "${KRG_DEFAULT_NFS_OPTIONS:-}" ] || _opts=$_opts,$KRG_DEFAULT_NFS_OPTIONS
	[ -z "${KRG_NFS_OPTS:-}" ] || _opts=$_opts,$KRG_NFS_OPTS
	echo "$_opts,addr=$KRG_NFS_SERVER"
}
