/**
 * The built-in answer-file templates (Liquid), one per family, used when the Profile has no
 * `answerTemplate`. They are also the documented starting point for a custom one; every variable they use
 * is listed in `AnswerContext` (index.ts). Multi-line values (scripts, authorized_keys) enter only through
 * `| write_file: PATH`, which makes a one-line `printf '…' > PATH` shell command, so no value can break a
 * file's line syntax; values inside YAML go through `| json` (a JSON string is a YAML scalar).
 *
 * What each installs: the OS from `mirror.url`, one automatic disk layout, root with a locked password
 * and the profile's SSH keys (Strata reaches installed nodes as root with its managed key), openssh-server
 * and curl; the pre-reboot script runs in the installer before installing, the post-reboot script at the
 * end of the install in the target system, followed by the report to Strata (`scripts.finish`), and the
 * machine reboots.
 */

export type AnswerKind = 'kickstart' | 'preseed' | 'cloud-init';

const kickstart = `# Strata kickstart for {{ node.name }} ({{ os.family }} {{ os.release }})
text
url --url={{ mirror.url | shell_quote }}
lang {{ vars.lang | default: 'en_US.UTF-8' }}
keyboard --vckeymap={{ vars.keymap | default: 'us' }}
timezone {{ vars.timezone | default: 'Etc/UTC' }} --utc
network --bootproto=dhcp --device={{ node.mac }} --hostname={{ node.hostname }} --activate
rootpw --lock
{% for key in sshAuthorizedKeys %}sshkey --username=root {{ key | shell_quote }}
{% endfor %}firewall --enabled --ssh
services --enabled=sshd
skipx
firstboot --disable
zerombr
clearpart --all --initlabel
autopart
bootloader --append={{ vars.kernelCmdline | default: 'console=tty0 console=ttyS0,115200n8' | shell_quote }}
reboot

%packages
@core
openssh-server
curl
%end
{% if scripts.preReboot != '' %}
%pre --log=/tmp/strata-pre-reboot.log
{{ scripts.preReboot | write_file: '/tmp/strata-pre-reboot.sh' }}
sh /tmp/strata-pre-reboot.sh
%end
{% endif %}
%post --log=/root/strata-post-install.log
{{ scripts.postReboot | write_file: '/root/strata-post-reboot.sh' }}
{{ scripts.finish | write_file: '/root/strata-finish.sh' }}
sh /root/strata-finish.sh
%end
`;

const preseed = `# Strata preseed for {{ node.name }} ({{ os.family }} {{ os.release }})
d-i debian-installer/locale string {{ vars.locale | default: 'en_US.UTF-8' }}
d-i keyboard-configuration/xkb-keymap select {{ vars.keymap | default: 'us' }}
d-i netcfg/choose_interface select auto
d-i netcfg/get_hostname string {{ node.hostname }}
d-i netcfg/hostname string {{ node.hostname }}
d-i netcfg/get_domain string {{ vars.domain | default: '' }}
d-i mirror/country string manual
d-i mirror/protocol string {{ mirror.protocol }}
d-i mirror/{{ mirror.protocol }}/hostname string {{ mirror.host }}
d-i mirror/{{ mirror.protocol }}/directory string {{ mirror.directory }}
d-i mirror/{{ mirror.protocol }}/proxy string
d-i mirror/suite string {{ os.release }}
d-i clock-setup/utc boolean true
d-i time/zone string {{ vars.timezone | default: 'Etc/UTC' }}
d-i partman-auto/method string regular
d-i partman-auto/choose_recipe select atomic
d-i partman-partitioning/confirm_write_new_label boolean true
d-i partman/choose_partition select finish
d-i partman/confirm boolean true
d-i partman/confirm_nooverwrite boolean true
d-i passwd/root-login boolean true
d-i passwd/make-user boolean false
d-i passwd/root-password-crypted password !
d-i tasksel/first multiselect standard, ssh-server
d-i pkgsel/include string openssh-server curl
popularity-contest popularity-contest/participate boolean false
d-i grub-installer/only_debian boolean true
d-i grub-installer/bootdev string default
{% if scripts.preReboot != '' %}d-i preseed/early_command string {{ scripts.preReboot | write_file: '/tmp/strata-pre-reboot.sh' }}; sh /tmp/strata-pre-reboot.sh
{% endif %}d-i preseed/late_command string mkdir -p /target/root/.ssh; chmod 700 /target/root/.ssh; {{ authorizedKeys | write_file: '/target/root/.ssh/authorized_keys' }}; chmod 600 /target/root/.ssh/authorized_keys; {{ scripts.postReboot | write_file: '/target/root/strata-post-reboot.sh' }}; {{ scripts.finish | write_file: '/target/root/strata-finish.sh' }}; in-target sh /root/strata-finish.sh
d-i finish-install/reboot_in_progress note
`;

const cloudInit = `#cloud-config
# Strata autoinstall for {{ node.name }} ({{ os.family }} {{ os.release }})
autoinstall:
  version: 1
  locale: {{ vars.locale | default: 'en_US.UTF-8' | json }}
  keyboard:
    layout: {{ vars.keymap | default: 'us' | json }}
  timezone: {{ vars.timezone | default: 'Etc/UTC' | json }}
  identity:
    hostname: {{ node.hostname | json }}
    username: {{ vars.username | default: 'strata' | json }}
    password: {{ vars.passwordHash | default: '!' | json }}
  ssh:
    install-server: true
    allow-pw: false
    authorized-keys: {{ sshAuthorizedKeys | json }}
  apt:
    primary:
      - arches: [default]
        uri: {{ mirror.url | json }}
  storage:
    layout:
      name: direct
  packages:
    - curl
{% if scripts.preReboot != '' %}  early-commands:
    - {{ scripts.preReboot | write_file: '/tmp/strata-pre-reboot.sh' | append: '; sh /tmp/strata-pre-reboot.sh' | json }}
{% endif %}  late-commands:
    - mkdir -p /target/root/.ssh && chmod 700 /target/root/.ssh
    - {{ authorizedKeys | write_file: '/target/root/.ssh/authorized_keys' | json }}
    - chmod 600 /target/root/.ssh/authorized_keys
    - {{ scripts.postReboot | write_file: '/target/root/strata-post-reboot.sh' | json }}
    - {{ scripts.finish | write_file: '/target/root/strata-finish.sh' | json }}
    - curtin in-target --target=/target -- sh /root/strata-finish.sh
  shutdown: reboot
`;

/** NoCloud meta-data served next to the autoinstall user-data. */
export const CLOUD_INIT_META_DATA = `instance-id: {{ instanceId | json }}
local-hostname: {{ node.hostname | json }}
`;

export const BUILTIN_ANSWER_TEMPLATES: Readonly<Record<AnswerKind, string>> = {
  kickstart,
  preseed,
  'cloud-init': cloudInit,
};
