// The core unit tests with earlyAccepts on (what production replicas run).
import { coreSuite, conditionalSuite } from './core-suite.ts'

coreSuite(true)
conditionalSuite(true)
