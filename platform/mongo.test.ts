import { test } from 'node:test';
import assert from 'node:assert/strict';
import { duplicateIndexes } from './mongo.js';

const bulkError = (fields: object) => Object.assign(new Error('bulk write failed'), fields);

test('duplicateIndexes: only duplicate keys, every other document inserted, gives the duplicates', () => {
  const err = bulkError({
    writeErrors: [
      { index: 1, code: 11000 },
      { index: 3, code: 11000 },
    ],
    insertedCount: 2,
  });
  assert.deepEqual(duplicateIndexes(err, 4), [1, 3]);
});

test('duplicateIndexes: an empty writeErrors list (a lost connection) is a failure, not "all inserted"', () => {
  const err = bulkError({ writeErrors: [], insertedCount: 0 });
  assert.throws(() => duplicateIndexes(err, 4), /bulk write failed/);
});

test('duplicateIndexes: any other write error, a short insert count, or a plain error is rethrown', () => {
  assert.throws(() =>
    duplicateIndexes(
      bulkError({
        writeErrors: [
          { index: 0, code: 11000 },
          { index: 1, code: 121 },
        ],
      }),
      2,
    ),
  );
  assert.throws(() => duplicateIndexes(bulkError({ writeErrors: [{ index: 0, code: 11000 }], insertedCount: 1 }), 4));
  assert.throws(() => duplicateIndexes(new Error('connection closed'), 4), /connection closed/);
});
