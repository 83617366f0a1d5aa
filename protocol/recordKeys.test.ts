import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recipientOf, recordKey, userRecordKey } from './recordKeys.js';

// The bytes pinned here are on disk in every Kafka cluster that ran this code: changing one
// moves a recipient's records to another partition and breaks their order across a deploy.
test('record keys are <app>|<user>, <app>|#g:<group> and <app>|#all', () => {
  assert.equal(recordKey('shop', { target: 'USER', user: 'u-1' }), 'shop|u-1');
  assert.equal(recordKey('shop', { target: 'GROUP', group: 'news.eu' }), 'shop|#g:news.eu');
  assert.equal(recordKey('shop', { target: 'ALL' }), 'shop|#all');
  // Records carry both fields, one of them null: only the target's field counts.
  assert.equal(recordKey('shop', { target: 'GROUP', user: null, group: 'g' }), 'shop|#g:g');
  assert.equal(recordKey('shop', { target: 'ALL', user: null, group: null }), 'shop|#all');
});

test('a user record key is the same as the key of a USER record', () => {
  assert.equal(userRecordKey('shop', 'ann'), 'shop|ann');
  assert.equal(userRecordKey('shop', 'ann'), recordKey('shop', { target: 'USER', user: 'ann' }));
});

test('the recipient part names the user, the group or the whole app', () => {
  assert.equal(recipientOf({ target: 'USER', user: 'ann' }), 'ann');
  assert.equal(recipientOf({ target: 'GROUP', group: 'news' }), '#g:news');
  assert.equal(recipientOf({ target: 'ALL' }), '#all');
});
