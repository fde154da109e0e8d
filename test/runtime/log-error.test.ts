import { describe, expect, test } from 'vitest'
import { LogError, isLogError } from '../../object-runtime/index.ts'

describe('LogError', () => {
  test('a conflict (an expected outcome) carries no stack frames; other codes do; the stack limit is left as it was', () => {
    const before = Error.stackTraceLimit
    const conflict = new LogError('conflict', 'acct/a was written at position 7, after the version read (3)', {
      conflict: { stream: 'acct', key: 'a', version: 3, position: 7 },
    })
    expect(conflict.stack).toBe('LogError: acct/a was written at position 7, after the version read (3)')
    expect(isLogError(conflict, 'conflict')).toBe(true)
    expect(conflict.conflict).toEqual({ stream: 'acct', key: 'a', version: 3, position: 7 })
    const other = new LogError('unavailable', 'no replica answered')
    expect(other.stack!.split('\n').length).toBeGreaterThan(1)
    expect(Error.stackTraceLimit).toBe(before)
  })
})
