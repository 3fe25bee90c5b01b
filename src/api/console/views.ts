/** What the console API answers about keys: the domain's records as plain JSON, never key material. */
import type { GrantRecord, KeyRecord, Tag, VersionRecord } from '../../store/store';
import { nextRotationDate } from '../ncp/common';

export function keyView(key: KeyRecord) {
  return {
    keyId: key.keyId,
    keyTag: key.keyTag,
    alias: key.alias,
    description: key.description,
    spec: key.spec,
    usage: key.usage,
    convergent: key.convergent,
    state: key.state,
    stateChangedAt: key.stateChangedAt,
    currentVersion: key.currentVersion,
    createdAt: key.createdAt,
    deletionDate: key.deletionDate,
    rotation: {
      enabled: key.rotationEnabled,
      intervalDays: key.rotationIntervalDays,
      lastRotationAt: key.lastRotationAt,
      count: key.rotationCount,
      nextRotationAt: nextRotationDate(key),
    },
  };
}

export function versionView(v: VersionRecord) {
  return { version: v.version, state: v.state, createdAt: v.createdAt, stateChangedAt: v.stateChangedAt };
}

export function grantView(g: GrantRecord) {
  return {
    grantId: g.grantId,
    name: g.name,
    granteeProject: g.granteeProject,
    operations: [...g.operations],
    retiringProject: g.retiringProject,
    issuingProject: g.issuingProject,
    createdAt: g.createdAt,
  };
}

export function tagView(t: Tag) {
  return { key: t.key, value: t.value };
}
