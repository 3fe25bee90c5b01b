/** The console API's answers (src/api/console/views.ts on the server). */

export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';

export interface KeyView {
  readonly keyId: string;
  readonly keyTag: string;
  readonly alias: string;
  readonly description: string;
  readonly spec: string;
  readonly usage: string;
  readonly convergent: boolean;
  readonly state: KeyState;
  readonly stateChangedAt: number;
  readonly currentVersion: number;
  readonly createdAt: number;
  readonly deletionDate: number | null;
  readonly rotation: {
    readonly enabled: boolean;
    readonly intervalDays: number;
    readonly lastRotationAt: number | null;
    readonly count: number;
    readonly nextRotationAt: number | null;
  };
}

export interface KeyDetail {
  readonly key: KeyView;
  readonly versions: ReadonlyArray<{ version: number; state: string; createdAt: number; stateChangedAt: number }>;
  readonly tags: ReadonlyArray<{ key: string; value: string }>;
  readonly grants: ReadonlyArray<{
    grantId: string;
    name: string;
    granteeProject: string;
    operations: string[];
    retiringProject: string;
    issuingProject: string;
    createdAt: number;
  }>;
}

export interface AuditRecord {
  readonly seq: number;
  readonly time: string;
  readonly pid: number;
  readonly project: string;
  readonly tokenId: string | null;
  readonly operation: string;
  readonly keyId: string | null;
  readonly keyVersion: number | null;
  readonly source: string;
  readonly requestId: string;
  readonly status: number;
  readonly outcome: 'success' | 'failure';
  readonly errorCode: string | null;
  readonly file: string;
}

export interface AuditVerify {
  readonly ok: boolean;
  readonly files: ReadonlyArray<{ file: string; ok: boolean; records: number; line?: number; reason?: string }>;
}

export interface HsmView {
  readonly module?: string;
  readonly tokenLabel?: string;
  readonly profile?: string;
  readonly pool?: {
    size: number;
    up: boolean;
    reason?: string;
    since?: number;
    open: number;
    idle: number;
    busy: number;
    waiting: number;
    recoveries: number;
  };
  readonly health: { ok: boolean; reason?: string; checkedAt: number };
}

/** Text for a key state. */
export const STATE_TEXT: Readonly<Record<KeyState, string>> = {
  Enabled: 'Enabled',
  Disabled: 'Disabled',
  PendingDeletion: 'Pending deletion',
};
