import { coreSuite, conditionalSuite } from './core-suite.ts'

coreSuite(false)
conditionalSuite(false)
