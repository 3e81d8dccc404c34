/**
 * Where iPXE finds Strata's boot script and the local-boot image on the segment's HTTP server: one
 * definition that DHCP (which hands iPXE the script URL), the HTTP handler (which serves it) and the
 * rendered scripts (which chain back to it) all use, so the three can never name different paths. Pure.
 */

/** The path of the boot-script route served by `http.ts`. */
export const BOOT_SCRIPT_PATH = '/boot/ipxe';

/** Artifact path of the GRUB EFI image that boots a local disk (built by the boot worker). */
export const LOCAL_BOOT_EFI = 'ipxe/grub-local.efi';

/**
 * Path and query of a node's boot script. Without a MAC, iPXE fills in the MAC of the interface it last
 * opened (`${netX/mac}`, expanded by iPXE itself: a literal here, not a template).
 */
export function bootScriptPath(mac?: string): string {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: iPXE setting syntax, expanded by iPXE
  return `${BOOT_SCRIPT_PATH}?mac=${mac ?? '${netX/mac}'}`;
}
