// The core unit tests with earlyAccepts on (what production replicas run).
import { coreSuite } from './core-suite.ts'

coreSuite(true)
