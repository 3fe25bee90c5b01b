/**
 * The AWS dialect driven by real clients: the unmodified @aws-sdk/client-kms (endpoint override
 * only) through every operation the dialect serves, the AWS Encryption SDK's KmsKeyringNode, and
 * SigV4's refusals (wrong secret, changed body, clock 10 minutes off, unknown access key) as the
 * SDK reports them. Keys and ciphertexts cross to the Huawei and NCP dialects and back.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildClient, CommitmentPolicy, getClient, KmsKeyringNode } from '@aws-crypto/client-node';
import * as kms from '@aws-sdk/client-kms';
import { fixture, type Fixture } from '../../helpers/fixture';

interface AwsCredential {
  accessKeyId: string;
  secretAccessKey: string;
  accountId: string;
  region: string;
}

let f: Fixture;
let admin: AwsCredential;
let other: AwsCredential;
let cryptoOnly: AwsCredential;
let a: kms.KMS; // p1, admin
let b: kms.KMS; // p2, admin

function credential(project: string, ...flags: string[]): AwsCredential {
  const out = f.server.cli(['token', 'create', '--project', project, '--aws', ...flags]);
  const c = JSON.parse(out) as AwsCredential;
  f.secrets.add(c.secretAccessKey);
  return c;
}

function client(c: AwsCredential, config: Partial<kms.KMSClientConfig> = {}): kms.KMS {
  return new kms.KMS({
    region: c.region,
    endpoint: f.server.url,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
    maxAttempts: 1,
    ...config,
  });
}

/** The SDK's exception name and HTTP status for a call that must fail. */
async function refused(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; $metadata?: { httpStatusCode?: number } };
    return { name: err.name, status: err.$metadata?.httpStatusCode };
  }
  assert.fail('the call succeeded');
}

const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('utf8');

before(async () => {
  f = await fixture();
  admin = credential('p1', '--admin');
  other = credential('p2', '--admin');
  cryptoOnly = credential('p1', '--scope', 'crypto');
  a = client(admin);
  b = client(other);
});
after(async () => {
  await f?.server.stop();
});

describe('AWS dialect: credentials', () => {
  it('when token create --aws runs, then it prints one JSON line with a 12-digit account, the region, and the secret is stored sealed only', () => {
    assert.match(admin.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
    assert.match(admin.secretAccessKey, /^[A-Za-z0-9+/]{40}$/);
    assert.match(admin.accountId, /^\d{12}$/);
    assert.equal(admin.region, 'us-east-1');
    assert.notEqual(admin.accountId, other.accountId);
    assert.equal(cryptoOnly.accountId, admin.accountId, 'one account id per project');
    // The store's file and its write-ahead log, where recent rows are.
    const db = Buffer.concat(['p11kms.db', 'p11kms.db-wal'].map((n) => (existsSync(path.join(f.server.dataDir, n)) ? readFileSync(path.join(f.server.dataDir, n)) : Buffer.alloc(0))));
    for (const c of [admin, other, cryptoOnly]) {
      for (const form of [c.secretAccessKey, Buffer.from(c.secretAccessKey).toString('hex'), Buffer.from(c.secretAccessKey).toString('base64')]) {
        assert.ok(!db.includes(form), 'a secret access key is in the store in plaintext');
      }
      assert.ok(db.includes(c.accessKeyId), 'the access key is in the store');
    }
  });
});

describe('AWS dialect: every operation through @aws-sdk/client-kms', () => {
  let sym: kms.KeyMetadata;
  let sym2: kms.KeyMetadata;

  it('when keys are created, described (id, ARN, alias, alias ARN), listed in pages and described, then the metadata is AWS-shaped', async () => {
    sym = (await a.createKey({ Description: 'first', Tags: [{ TagKey: 'team', TagValue: 'blue' }] })).KeyMetadata!;
    sym2 = (await a.createKey({})).KeyMetadata!;
    assert.match(sym.KeyId!, /^[0-9a-f-]{36}$/);
    assert.equal(sym.Arn, `arn:aws:kms:us-east-1:${admin.accountId}:key/${sym.KeyId}`);
    assert.equal(sym.AWSAccountId, admin.accountId);
    assert.equal(sym.KeyState, 'Enabled');
    assert.equal(sym.KeySpec, 'SYMMETRIC_DEFAULT');
    assert.ok(sym.CreationDate instanceof Date && Math.abs(sym.CreationDate.getTime() - Date.now()) < 600_000);
    await a.createAlias({ AliasName: 'alias/app-key', TargetKeyId: sym.KeyId });
    for (const KeyId of [sym.KeyId!, sym.Arn!, 'alias/app-key', `arn:aws:kms:us-east-1:${admin.accountId}:alias/app-key`]) {
      assert.equal((await a.describeKey({ KeyId })).KeyMetadata!.KeyId, sym.KeyId, KeyId);
    }
    assert.equal((await refused(a.describeKey({ KeyId: `arn:aws:kms:eu-west-1:${admin.accountId}:key/${sym.KeyId}` }))).name, 'NotFoundException');
    assert.equal((await refused(b.describeKey({ KeyId: sym.Arn! }))).name, 'NotFoundException');
    const seen: string[] = [];
    let page = await a.listKeys({ Limit: 2 });
    seen.push(...page.Keys!.map((k) => k.KeyId!));
    assert.equal(page.Truncated, true);
    while (page.Truncated) {
      page = await a.listKeys({ Limit: 2, Marker: page.NextMarker! });
      seen.push(...page.Keys!.map((k) => k.KeyId!));
    }
    assert.ok(seen.includes(sym.KeyId!) && seen.includes(f.aes.key_id), 'keys of every dialect are listed');
    assert.equal(new Set(seen).size, seen.length);
    assert.equal((await refused(a.listKeys({ Marker: 'nope' }))).name, 'InvalidMarkerException');
    await a.updateKeyDescription({ KeyId: sym.KeyId, Description: 'renamed' });
    assert.equal((await a.describeKey({ KeyId: sym.KeyId })).KeyMetadata!.Description, 'renamed');
  });

  it('when aliases are created, listed, moved and deleted, then each answer follows; a key made in Huawei shows its name as alias', async () => {
    const list = await a.listAliases({});
    const names = list.Aliases!.map((x) => x.AliasName);
    assert.ok(names.includes('alias/app-key') && names.includes('alias/aes-1'), names.join());
    const mine = list.Aliases!.find((x) => x.AliasName === 'alias/app-key')!;
    assert.equal(mine.TargetKeyId, sym.KeyId);
    assert.equal(mine.AliasArn, `arn:aws:kms:us-east-1:${admin.accountId}:alias/app-key`);
    assert.equal((await refused(a.createAlias({ AliasName: 'alias/app-key', TargetKeyId: sym2.KeyId }))).name, 'AlreadyExistsException');
    assert.equal((await refused(a.createAlias({ AliasName: 'alias/aws/mine', TargetKeyId: sym2.KeyId }))).name, 'InvalidAliasNameException');
    await a.updateAlias({ AliasName: 'alias/app-key', TargetKeyId: sym2.KeyId });
    assert.equal((await a.describeKey({ KeyId: 'alias/app-key' })).KeyMetadata!.KeyId, sym2.KeyId);
    const only = await a.listAliases({ KeyId: sym2.KeyId });
    assert.deepEqual(only.Aliases!.map((x) => x.AliasName), ['alias/app-key']);
    await a.deleteAlias({ AliasName: 'alias/app-key' });
    assert.equal((await refused(a.describeKey({ KeyId: 'alias/app-key' }))).name, 'NotFoundException');
    await a.createAlias({ AliasName: 'alias/app-key', TargetKeyId: sym.KeyId });
  });

  it('when tags are added, listed and removed, then ListResourceTags follows', async () => {
    await a.tagResource({ KeyId: sym.KeyId, Tags: [{ TagKey: 'env', TagValue: 'prod' }] });
    const tags = (await a.listResourceTags({ KeyId: sym.KeyId })).Tags!.map((t) => `${t.TagKey}=${t.TagValue}`).sort();
    assert.deepEqual(tags, ['env=prod', 'team=blue']);
    await a.untagResource({ KeyId: sym.KeyId, TagKeys: ['team'] });
    assert.deepEqual((await a.listResourceTags({ KeyId: sym.KeyId })).Tags, [{ TagKey: 'env', TagValue: 'prod' }]);
    assert.equal((await refused(a.tagResource({ KeyId: sym.KeyId, Tags: [{ TagKey: 'aws:x', TagValue: 'y' }] }))).name, 'TagException');
  });

  it('when data is encrypted with a context, then Decrypt needs the same context; a named wrong key is IncorrectKeyException', async () => {
    const EncryptionContext = { purpose: 'test', Tenant: 'A' };
    const e = await a.encrypt({ KeyId: 'alias/app-key', Plaintext: Buffer.from('secret message 1'), EncryptionContext });
    assert.equal(e.KeyId, sym.Arn);
    assert.equal(e.EncryptionAlgorithm, 'SYMMETRIC_DEFAULT');
    const d = await a.decrypt({ CiphertextBlob: e.CiphertextBlob!, EncryptionContext: { Tenant: 'A', purpose: 'test' } });
    assert.equal(text(d.Plaintext), 'secret message 1');
    assert.equal(d.KeyId, sym.Arn);
    assert.equal(text((await a.decrypt({ CiphertextBlob: e.CiphertextBlob!, EncryptionContext, KeyId: sym.Arn! })).Plaintext), 'secret message 1');
    for (const ctx of [{}, { purpose: 'test' }, { purpose: 'test', Tenant: 'a' }, { purpose: 'test', tenant: 'A' }]) {
      assert.equal((await refused(a.decrypt({ CiphertextBlob: e.CiphertextBlob!, EncryptionContext: ctx }))).name, 'InvalidCiphertextException');
    }
    assert.equal((await refused(a.decrypt({ CiphertextBlob: e.CiphertextBlob!, EncryptionContext, KeyId: sym2.KeyId }))).name, 'IncorrectKeyException');
    const tampered = Buffer.from(e.CiphertextBlob!);
    tampered[tampered.length - 1]! ^= 1;
    assert.equal((await refused(a.decrypt({ CiphertextBlob: tampered, EncryptionContext }))).name, 'InvalidCiphertextException');
    assert.equal((await refused(a.encrypt({ KeyId: sym.KeyId, Plaintext: Buffer.alloc(4097, 1) }))).name, 'ValidationException');
  });

  it('when a ciphertext is re-encrypted under another key, then it opens under that key and context', async () => {
    const e = await a.encrypt({ KeyId: sym.KeyId, Plaintext: Buffer.from('moving'), EncryptionContext: { k: 'v' } });
    const r = await a.reEncrypt({ CiphertextBlob: e.CiphertextBlob!, SourceEncryptionContext: { k: 'v' }, DestinationKeyId: sym2.Arn!, DestinationEncryptionContext: { k: 'w' } });
    assert.equal(r.SourceKeyId, sym.Arn);
    assert.equal(r.KeyId, sym2.Arn);
    const d = await a.decrypt({ CiphertextBlob: r.CiphertextBlob!, EncryptionContext: { k: 'w' } });
    assert.equal(text(d.Plaintext), 'moving');
    assert.equal(d.KeyId, sym2.Arn);
  });

  it('when data keys are generated (KeySpec or NumberOfBytes, with and without plaintext), then they decrypt to the same bytes', async () => {
    const g = await a.generateDataKey({ KeyId: sym.KeyId, KeySpec: 'AES_256', EncryptionContext: { file: 'x' } });
    f.secrets.add(Buffer.from(g.Plaintext!));
    assert.equal(g.Plaintext!.length, 32);
    assert.equal(g.KeyId, sym.Arn);
    const d = await a.decrypt({ CiphertextBlob: g.CiphertextBlob!, EncryptionContext: { file: 'x' } });
    assert.deepEqual(Buffer.from(d.Plaintext!), Buffer.from(g.Plaintext!));
    assert.equal((await a.generateDataKey({ KeyId: sym.KeyId, NumberOfBytes: 64 })).Plaintext!.length, 64);
    assert.equal((await a.generateDataKey({ KeyId: sym.KeyId, KeySpec: 'AES_128' })).Plaintext!.length, 16);
    assert.equal((await refused(a.generateDataKey({ KeyId: sym.KeyId, KeySpec: 'AES_256', NumberOfBytes: 32 }))).name, 'ValidationException');
    assert.equal((await refused(a.generateDataKey({ KeyId: sym.KeyId }))).name, 'ValidationException');
    const w = await a.generateDataKeyWithoutPlaintext({ KeyId: 'alias/app-key', KeySpec: 'AES_256' });
    assert.equal(w.KeyId, sym.Arn);
    assert.equal((w as { Plaintext?: unknown }).Plaintext, undefined);
    assert.equal((await a.decrypt({ CiphertextBlob: w.CiphertextBlob! })).Plaintext!.length, 32);
    const r = await a.generateRandom({ NumberOfBytes: 48 });
    assert.equal(r.Plaintext!.length, 48);
  });

  it('when an RSA key signs (RAW and DIGEST), then Verify and node:crypto with GetPublicKey agree; a changed message is KMSInvalidSignatureException', async () => {
    const rsa = (await a.createKey({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' })).KeyMetadata!;
    assert.deepEqual(rsa.SigningAlgorithms?.includes('RSASSA_PSS_SHA_256'), true);
    const pub = await a.getPublicKey({ KeyId: rsa.KeyId });
    assert.equal(pub.KeyUsage, 'SIGN_VERIFY');
    const key = createPublicKey({ key: Buffer.from(pub.PublicKey!), format: 'der', type: 'spki' });
    const Message = Buffer.from('signed words');
    for (const SigningAlgorithm of ['RSASSA_PKCS1_V1_5_SHA_256', 'RSASSA_PSS_SHA_384'] as const) {
      const s = await a.sign({ KeyId: rsa.Arn!, Message, SigningAlgorithm });
      assert.equal(s.KeyId, rsa.Arn);
      const hash = SigningAlgorithm.endsWith('256') ? 'sha256' : 'sha384';
      const pss = SigningAlgorithm.startsWith('RSASSA_PSS');
      assert.ok(verifySignature(hash, Message, { key, ...(pss ? { padding: 6, saltLength: 48 } : {}) }, Buffer.from(s.Signature!)), SigningAlgorithm);
      assert.equal((await a.verify({ KeyId: rsa.KeyId, Message, Signature: s.Signature!, SigningAlgorithm })).SignatureValid, true);
      assert.equal((await refused(a.verify({ KeyId: rsa.KeyId, Message: Buffer.from('signed wordz'), Signature: s.Signature!, SigningAlgorithm }))).name, 'KMSInvalidSignatureException');
    }
    const digest = createHash('sha256').update(Message).digest();
    const s = await a.sign({ KeyId: rsa.KeyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' });
    assert.equal((await a.verify({ KeyId: rsa.KeyId, Message, Signature: s.Signature!, SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' })).SignatureValid, true);
    assert.equal((await refused(a.sign({ KeyId: sym.KeyId, Message, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }))).name, 'InvalidKeyUsageException');
    assert.equal((await refused(a.encrypt({ KeyId: rsa.KeyId, Plaintext: Message }))).name, 'InvalidKeyUsageException');
    assert.equal((await refused(a.getPublicKey({ KeyId: sym.KeyId }))).name, 'UnsupportedOperationException');
  });

  it('when an RSA ENCRYPT_DECRYPT key encrypts, then Decrypt opens it', async () => {
    const rsa = (await a.createKey({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' })).KeyMetadata!;
    const e = await a.encrypt({ KeyId: rsa.KeyId, Plaintext: Buffer.from('to rsa'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' });
    assert.equal(e.EncryptionAlgorithm, 'RSAES_OAEP_SHA_256');
    assert.equal(text((await a.decrypt({ CiphertextBlob: e.CiphertextBlob!, KeyId: rsa.KeyId, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })).Plaintext), 'to rsa');
    assert.equal((await refused(a.encrypt({ KeyId: rsa.KeyId, Plaintext: Buffer.alloc(191, 1), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))).name, 'ValidationException');
    assert.equal((await refused(a.encrypt({ KeyId: sym.KeyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))).name, 'ValidationException');
  });

  it('when rotation is enabled, rotated on demand and listed, then old ciphertexts still open and new ones use the new version', async () => {
    assert.equal((await a.getKeyRotationStatus({ KeyId: sym.KeyId })).KeyRotationEnabled, false);
    await a.enableKeyRotation({ KeyId: sym.KeyId, RotationPeriodInDays: 180 });
    const st = await a.getKeyRotationStatus({ KeyId: sym.KeyId });
    assert.equal(st.KeyRotationEnabled, true);
    assert.equal(st.RotationPeriodInDays, 180);
    assert.ok(st.NextRotationDate instanceof Date);
    await a.enableKeyRotation({ KeyId: sym.KeyId });
    const old = await a.encrypt({ KeyId: sym.KeyId, Plaintext: Buffer.from('before rotation') });
    assert.equal((await a.listKeyRotations({ KeyId: sym.KeyId })).Rotations!.length, 0);
    assert.equal((await a.rotateKeyOnDemand({ KeyId: sym.KeyId })).KeyId, sym.Arn);
    const rotations = (await a.listKeyRotations({ KeyId: sym.KeyId })).Rotations!;
    assert.equal(rotations.length, 1);
    assert.ok(rotations[0]!.RotationDate instanceof Date);
    assert.equal(text((await a.decrypt({ CiphertextBlob: old.CiphertextBlob! })).Plaintext), 'before rotation');
    await a.disableKeyRotation({ KeyId: sym.KeyId });
    assert.equal((await a.getKeyRotationStatus({ KeyId: sym.KeyId })).KeyRotationEnabled, false);
  });

  it('when a grant gives another account Decrypt and GenerateDataKey, then it can use the key by ARN until the grant is retired or revoked', async () => {
    assert.equal((await refused(b.generateDataKey({ KeyId: sym.Arn!, KeySpec: 'AES_256' }))).name, 'NotFoundException');
    const g = await a.createGrant({ KeyId: sym.KeyId, GranteePrincipal: `arn:aws:iam::${other.accountId}:root`, Operations: ['GenerateDataKey', 'Decrypt'], Name: 'to-p2', RetiringPrincipal: other.accountId });
    assert.ok(g.GrantId && g.GrantToken);
    const dk = await b.generateDataKey({ KeyId: sym.Arn!, KeySpec: 'AES_256' });
    f.secrets.add(Buffer.from(dk.Plaintext!));
    assert.deepEqual(Buffer.from((await b.decrypt({ CiphertextBlob: dk.CiphertextBlob! })).Plaintext!), Buffer.from(dk.Plaintext!));
    assert.equal((await refused(b.encrypt({ KeyId: sym.Arn!, Plaintext: Buffer.from('x') }))).name, 'NotFoundException');
    const listed = (await a.listGrants({ KeyId: sym.KeyId })).Grants!;
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.GranteePrincipal, `arn:aws:iam::${other.accountId}:root`);
    assert.deepEqual([...listed[0]!.Operations!].sort(), ['Decrypt', 'GenerateDataKey']);
    await b.retireGrant({ GrantToken: g.GrantToken! });
    assert.equal((await refused(b.generateDataKey({ KeyId: sym.Arn!, KeySpec: 'AES_256' }))).name, 'NotFoundException');
    const g2 = await a.createGrant({ KeyId: sym.KeyId, GranteePrincipal: other.accountId, Operations: ['Decrypt'] });
    await a.revokeGrant({ KeyId: sym.KeyId, GrantId: g2.GrantId! });
    assert.equal((await a.listGrants({ KeyId: sym.KeyId })).Grants!.length, 0);
    assert.equal((await refused(a.revokeGrant({ KeyId: sym.KeyId, GrantId: g2.GrantId! }))).name, 'NotFoundException');
  });

  it('when a grantee holds CreateGrant, then it passes on only operations of its own grant, and revoking its grant removes the grants it made', async () => {
    const third = credential('p3', '--admin');
    const c = client(third);
    const g = await a.createGrant({ KeyId: sym.KeyId, GranteePrincipal: other.accountId, Operations: ['CreateGrant', 'GenerateDataKey'] });
    for (const [grantee, ops] of [[third, ['Decrypt']], [third, ['GenerateDataKey', 'Encrypt']], [other, ['Decrypt']]] as const) {
      const err = await refused(b.createGrant({ KeyId: sym.Arn!, GranteePrincipal: grantee.accountId, Operations: [...ops] }));
      assert.deepEqual(err, { name: 'AccessDeniedException', status: 400 }, ops.join(','));
    }
    assert.equal((await a.listGrants({ KeyId: sym.KeyId })).Grants!.length, 1);
    await b.createGrant({ KeyId: sym.Arn!, GranteePrincipal: third.accountId, Operations: ['GenerateDataKey'] });
    const dk = await c.generateDataKey({ KeyId: sym.Arn!, KeySpec: 'AES_256' });
    f.secrets.add(Buffer.from(dk.Plaintext!));
    await a.revokeGrant({ KeyId: sym.KeyId, GrantId: g.GrantId! });
    assert.equal((await a.listGrants({ KeyId: sym.KeyId })).Grants!.length, 0);
    assert.equal((await refused(c.generateDataKey({ KeyId: sym.Arn!, KeySpec: 'AES_256' }))).name, 'NotFoundException');
  });

  it('when a key is disabled, enabled, scheduled for deletion and cancelled, then each state refuses or allows use as AWS does', async () => {
    await a.disableKey({ KeyId: sym2.KeyId });
    await a.disableKey({ KeyId: sym2.KeyId });
    assert.equal((await refused(a.encrypt({ KeyId: sym2.KeyId, Plaintext: Buffer.from('x') }))).name, 'DisabledException');
    await a.enableKey({ KeyId: sym2.KeyId });
    await a.enableKey({ KeyId: sym2.KeyId });
    assert.ok((await a.encrypt({ KeyId: sym2.KeyId, Plaintext: Buffer.from('x') })).CiphertextBlob);
    assert.equal((await refused(a.scheduleKeyDeletion({ KeyId: sym2.KeyId, PendingWindowInDays: 6 }))).name, 'ValidationException');
    const del = await a.scheduleKeyDeletion({ KeyId: sym2.KeyId, PendingWindowInDays: 7 });
    assert.equal(del.KeyState, 'PendingDeletion');
    assert.equal(del.PendingWindowInDays, 7);
    assert.ok(Math.abs(del.DeletionDate!.getTime() - (Date.now() + 7 * 86_400_000)) < 600_000);
    const err = await refused(a.encrypt({ KeyId: sym2.KeyId, Plaintext: Buffer.from('x') }));
    assert.deepEqual(err, { name: 'KMSInvalidStateException', status: 409 });
    assert.equal((await a.cancelKeyDeletion({ KeyId: sym2.KeyId })).KeyId, sym2.Arn);
    assert.equal((await a.describeKey({ KeyId: sym2.KeyId })).KeyMetadata!.KeyState, 'Disabled');
  });

  it('when an access key lacks the scope, or a feature is out of scope, then AccessDenied or UnsupportedOperation', async () => {
    const c = client(cryptoOnly);
    assert.equal((await refused(c.createKey({}))).name, 'AccessDeniedException');
    assert.equal((await refused(c.describeKey({ KeyId: sym.KeyId }))).name, 'AccessDeniedException');
    assert.ok((await c.encrypt({ KeyId: sym.KeyId, Plaintext: Buffer.from('x') })).CiphertextBlob);
    for (const input of [{ Policy: '{}' }, { MultiRegion: true }, { KeySpec: 'ECC_NIST_P256' as const, KeyUsage: 'SIGN_VERIFY' as const }, { KeySpec: 'HMAC_256' as const, KeyUsage: 'GENERATE_VERIFY_MAC' as const }, { Origin: 'EXTERNAL' as const }]) {
      assert.equal((await refused(a.createKey(input))).name, 'UnsupportedOperationException', JSON.stringify(input));
    }
  });
});

describe('AWS dialect: one key set across dialects', () => {
  it('when AWS encrypts with a context under a key made by the CLI, then Huawei decrypt-data and NCP decrypt open it with the same context', async () => {
    const e = await a.encrypt({ KeyId: f.aes.key_id, Plaintext: Buffer.from('cross dialect'), EncryptionContext: { b: '2', a: '1' } });
    const hw = await f.server.request('POST', '/v1.0/p1/kms/decrypt-data', {
      headers: { 'X-Auth-Token': f.user },
      body: { cipher_text: Buffer.from(e.CiphertextBlob!).toString('base64'), encryption_context: { a: '1', b: '2' } },
    });
    assert.equal(hw.status, 200, hw.text);
    assert.equal(hw.body.plain_text, 'cross dialect');
    const ncp = await f.server.request('POST', `/kms/v1/keys/${f.aes.keyTag}/decrypt`, {
      headers: { 'x-ncp-ocapi-token': f.user },
      body: { ciphertext: `ncpkms:v1:${Buffer.from(e.CiphertextBlob!).toString('base64')}`, context: Buffer.from('{"a":"1","b":"2"}').toString('base64') },
    });
    assert.equal(ncp.status, 200, ncp.text);
    assert.equal(Buffer.from(ncp.body.data.plaintext, 'base64').toString(), 'cross dialect');
  });

  it('when Huawei makes a data key with a context, then AWS Decrypt opens its ciphertext', async () => {
    const dk = await f.server.request('POST', '/v1.0/p1/kms/create-datakey', {
      headers: { 'X-Auth-Token': f.user },
      body: { key_id: f.aes.key_id, datakey_length: '256', encryption_context: { tenant: 'x' } },
    });
    assert.equal(dk.status, 200, dk.text);
    f.secrets.addHex(dk.body.plain_text);
    const d = await a.decrypt({ CiphertextBlob: Buffer.from(dk.body.cipher_text, 'hex'), EncryptionContext: { tenant: 'x' } });
    assert.equal(Buffer.from(d.Plaintext!).toString('hex').toUpperCase(), dk.body.plain_text);
    assert.equal(d.KeyId, `arn:aws:kms:us-east-1:${admin.accountId}:key/${f.aes.key_id}`);
  });
  it('when a Huawei grant gives decrypt-data and decrypt-datakey, then AWS Decrypt is not granted by it (a grant names one dialect\'s operations)', async () => {
    const hw = (token: string, project: string, action: string, body: unknown) =>
      f.server.request('POST', `/v1.0/${project}/kms/${action}`, { headers: { 'X-Auth-Token': token }, body });
    const g = await hw(f.admin, 'p1', 'create-grant', { key_id: f.aes.key_id, grantee_principal: 'p2', operations: ['decrypt-data', 'decrypt-datakey'] });
    assert.equal(g.status, 200, g.text);
    const e = await a.encrypt({ KeyId: f.aes.key_id, Plaintext: Buffer.from('not for p2 through AWS') });
    assert.equal((await refused(b.decrypt({ CiphertextBlob: e.CiphertextBlob! }))).name, 'NotFoundException');
    const opened = await hw(f.other, 'p2', 'decrypt-data', { key_id: f.aes.key_id, cipher_text: Buffer.from(e.CiphertextBlob!).toString('base64') });
    assert.equal(opened.status, 200, opened.text);
    assert.equal((await hw(f.admin, 'p1', 'revoke-grant', { key_id: f.aes.key_id, grant_id: g.body.grant_id })).status, 200);
  });
});

describe('AWS dialect: the AWS Encryption SDK', () => {
  it('when KmsKeyringNode encrypts a message with an encryption context, then it decrypts to the same bytes and context', async () => {
    const key = (await a.createKey({ Description: 'esdk' })).KeyMetadata!;
    const clientProvider = getClient(kms.KMS as unknown as Parameters<typeof getClient>[0], { endpoint: f.server.url, credentials: { accessKeyId: admin.accessKeyId, secretAccessKey: admin.secretAccessKey } });
    const keyring = new KmsKeyringNode({ clientProvider, generatorKeyId: key.Arn! });
    const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const plaintext = Buffer.from('a message for the encryption sdk');
    const context = { stage: 'test', purpose: 'esdk' };
    const { result } = await encrypt(keyring, plaintext, { encryptionContext: context });
    assert.ok(!result.includes(plaintext));
    const opened = await decrypt(keyring, result);
    assert.deepEqual(opened.plaintext, plaintext);
    assert.equal(opened.messageHeader.encryptionContext['stage'], 'test');
    assert.equal(opened.messageHeader.encryptionContext['purpose'], 'esdk');
    assert.equal(opened.messageHeader.encryptedDataKeys[0]!.providerInfo, key.Arn);
  });
});

describe('AWS dialect: SigV4 refusals', () => {
  it('when the secret is wrong, then InvalidSignatureException', async () => {
    const c = client({ ...admin, secretAccessKey: admin.secretAccessKey.replace(/^./, (ch) => (ch === 'A' ? 'B' : 'A')) });
    assert.deepEqual(await refused(c.listKeys({})), { name: 'InvalidSignatureException', status: 400 });
  });

  it('when the access key is unknown, then UnrecognizedClientException', async () => {
    const c = client({ ...admin, accessKeyId: 'AKIAAAAAAAAAAAAAAAAA' });
    assert.deepEqual(await refused(c.listKeys({})), { name: 'UnrecognizedClientException', status: 400 });
  });

  it('when the body is changed after signing, then InvalidSignatureException and nothing happens', async () => {
    const c = client(admin);
    c.middlewareStack.add(
      (next) => async (args) => {
        // The signed body said "before"; the server receives "BEFORE", a body of the same length.
        const req = args.request as { body?: unknown };
        const body = typeof req.body === 'string' ? req.body : Buffer.from(req.body as Uint8Array).toString('utf8');
        assert.ok(body.includes('before'));
        req.body = body.replace('before', 'BEFORE');
        return next(args);
      },
      { step: 'deserialize', name: 'tamperAfterSigning' },
    );
    const key = (await a.createKey({})).KeyMetadata!;
    assert.deepEqual(await refused(c.updateKeyDescription({ KeyId: key.KeyId, Description: 'before' })), { name: 'InvalidSignatureException', status: 400 });
    assert.equal((await a.describeKey({ KeyId: key.KeyId })).KeyMetadata!.Description, '');
  });

  it('when the client clock is 10 minutes off, then InvalidSignatureException; the SDK then corrects its offset from the Date header', async () => {
    const c = client(admin, { systemClockOffset: 10 * 60_000 });
    assert.deepEqual(await refused(c.listKeys({})), { name: 'InvalidSignatureException', status: 400 });
    assert.ok((await c.listKeys({})).Keys);
  });

  it('when an access key is revoked, then its next request is UnrecognizedClientException', async () => {
    const c = credential('p1', '--scope', 'read');
    assert.ok((await client(c).listKeys({})).Keys);
    f.server.cli(['token', 'revoke', c.accessKeyId]);
    // A new client (new connection): the CLI call blocked this process past the server's keep-alive.
    assert.equal((await refused(client(c).listKeys({}))).name, 'UnrecognizedClientException');
  });

  it('when an operation is unknown or the target is missing, then UnknownOperationException in AWS shape', async () => {
    const r = await f.server.request('POST', '/', { headers: { 'x-amz-target': 'TrentService.NoSuchThing', 'content-type': 'application/x-amz-json-1.1' }, body: {} });
    assert.equal(r.status, 400);
    assert.equal(typeof r.body.__type, 'string');
    const plain = await f.server.request('POST', '/', { body: {} });
    assert.equal(plain.status, 404);
  });

  it('then nothing secret was logged', () => {
    f.secrets.assertNotLogged(f.server);
  });
});
