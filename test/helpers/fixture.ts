/** One server per test file with two projects: p1 (admin and crypto tokens, a few keys) and p2. */
import { Secrets } from './secrets';
import { TestServer, type CreatedKey } from './server';

export interface Fixture {
  readonly server: TestServer;
  readonly secrets: Secrets;
  readonly admin: string;
  readonly user: string;
  readonly other: string;
  readonly aes: CreatedKey;
  readonly rsa: CreatedKey;
  readonly convergent: CreatedKey;
  readonly foreign: CreatedKey;
}

/** `env`: extra server settings (e.g. a fast sweep for tests that let time pass). */
export async function fixture(env: Record<string, string> = {}): Promise<Fixture> {
  const server = await TestServer.start(env);
  const secrets = new Secrets();
  const admin = server.token('p1', true);
  const user = server.token('p1');
  const other = server.token('p2', true);
  secrets.add(admin, user, other);
  return {
    server,
    secrets,
    admin,
    user,
    other,
    aes: server.key('p1', 'aes-1', 'AES_256'),
    rsa: server.key('p1', 'rsa-1', 'RSA_2048'),
    convergent: server.key('p1', 'conv-1', 'AES_256', true),
    foreign: server.key('p2', 'aes-2', 'AES_256'),
  };
}

/** Every single-byte change of a ciphertext (one bit flipped per byte). */
export function* tampered(bytes: Buffer): Generator<Buffer> {
  for (let i = 0; i < bytes.length; i++) {
    const b = Buffer.from(bytes);
    b[i] = b[i]! ^ 0x01;
    yield b;
  }
}
