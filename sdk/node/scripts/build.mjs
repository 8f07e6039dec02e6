// Builds the native addon (promptos.node) with the local Rust toolchain, unless it is
// there already: `npm install ./sdk/node` from a checkout runs it. The crate is
// sdk/node/Cargo.toml in the PromptOS workspace; builds go to $CARGO_TARGET_DIR (default
// the workspace's target/). PROMPTOS_NODE_PROFILE=debug builds faster, unoptimised.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const addon = join(here, 'promptos.node');
const force = process.argv.includes('--force');
if (existsSync(addon) && !force) process.exit(0);

const profile = process.env.PROMPTOS_NODE_PROFILE === 'debug' ? 'debug' : 'release';
const manifest = join(here, 'Cargo.toml');
const args = ['build', '--manifest-path', manifest, '-p', 'promptos-node'];
if (profile === 'release') args.push('--release');
execFileSync('cargo', args, { stdio: 'inherit' });

const workspace = resolve(here, '..', '..');
const target = process.env.CARGO_TARGET_DIR ? resolve(workspace, process.env.CARGO_TARGET_DIR) : join(workspace, 'target');
const names = { linux: 'libpromptos_node.so', darwin: 'libpromptos_node.dylib', win32: 'promptos_node.dll' };
const built = join(target, profile, names[process.platform] ?? names.linux);
copyFileSync(built, addon);
console.log(`promptos: built ${addon} (${profile})`);
