#!/usr/bin/env node
// The `quipu` command. quipu ships as TypeScript; tsx compiles it on load.
import { register } from 'tsx/esm/api'

register()
await import('../log-server/cli/main.ts')
