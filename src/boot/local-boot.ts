/**
 * The GRUB EFI image that UEFI nodes chain to when they should boot their local disk (PXE-once): UEFI has
 * no iPXE way to boot a local disk, and firmware boot entries for a disk that was blank at power-on are
 * unreliable. Built once per data dir by the segment's worker with Debian's grub-mkstandalone, and served
 * as the artifact `LOCAL_BOOT_EFI` (src/ipxe/paths.ts).
 */
import { execFile } from 'node:child_process';
import { existsSync, renameSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../core/log.ts';
import { LOCAL_BOOT_EFI } from '../ipxe/paths.ts';

/** GRUB's EFI modules (Debian's grub-efi-amd64-bin). */
const GRUB_EFI_MODULES = '/usr/lib/grub/x86_64-efi';

/**
 * Builds the GRUB EFI image that UEFI nodes chain to when they should boot their disk (PXE-once): it finds
 * the installed system's /boot/grub/grub.cfg on any local partition and hands over to it.
 */
export async function ensureLocalBootEfi(artifacts: string, log: Logger): Promise<void> {
  const out = join(artifacts, LOCAL_BOOT_EFI);
  const stamp = `${out}.v2`;
  if (existsSync(out) && existsSync(stamp)) return;
  if (!existsSync(GRUB_EFI_MODULES)) {
    log.warn('grub-efi-amd64-bin is missing: UEFI nodes cannot be told to boot their local disk', {
      need: GRUB_EFI_MODULES,
    });
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'strata-grub-'));
  try {
    const cfg = join(dir, 'grub.cfg');
    await writeFile(
      cfg,
      [
        'insmod part_gpt',
        'insmod part_msdos',
        'insmod ext2',
        'insmod fat',
        // grubenv, not grub.cfg: this image's own memdisk has a /boot/grub/grub.cfg (this file), and
        // grub-install always writes grubenv next to the installed system's grub.cfg.
        'search --no-floppy --set=found --file /boot/grub/grubenv',
        'if [ -n "$found" ]; then set root=$found; set prefix=($found)/boot/grub; configfile ($found)/boot/grub/grub.cfg; fi',
        'search --no-floppy --set=found --file /grub/grubenv',
        'if [ -n "$found" ]; then set root=$found; set prefix=($found)/grub; configfile ($found)/grub/grub.cfg; fi',
        'echo "Strata: no installed system with /boot/grub/grub.cfg on a local disk"',
        'sleep 10',
        'exit',
        '',
      ].join('\n'),
    );
    await new Promise<void>((resolve, reject) =>
      execFile(
        'grub-mkstandalone',
        [
          '-O',
          'x86_64-efi',
          '--locales=',
          '--fonts=',
          '--themes=',
          '--modules=part_gpt part_msdos ext2 fat search configfile normal linux echo sleep',
          '-o',
          `${out}.tmp`,
          `boot/grub/grub.cfg=${cfg}`,
        ],
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    renameSync(`${out}.tmp`, out);
    await writeFile(stamp, '');
    log.info('built the UEFI local-boot image', { path: out });
  } catch (err) {
    log.warn('could not build the UEFI local-boot image', { err });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
