import { describe, expect, it } from 'vitest';
import {
  type ColumnShape,
  describeDiff,
  diffShapes,
  sameShape,
  type TableShape,
} from './schema-history-diff.ts';

const INT = { typeName: 'int4', typeOid: 23, typeMod: -1 };
const TEXT = { typeName: 'text', typeOid: 25, typeMod: -1 };

function column(
  name: string,
  position: number,
  type: typeof INT,
  attnum: number | null = null,
  extra: Partial<ColumnShape> = {},
): ColumnShape {
  return { name, position, attnum, typeExpression: null, key: false, nullable: null, ...type, ...extra };
}

function shape(columns: ColumnShape[], extra: Partial<TableShape> = {}): TableShape {
  return {
    schema: 'public',
    table: 't',
    relationId: 100,
    replicaIdentity: 'default',
    primaryKeyColumnNames: ['id'],
    columns,
    ...extra,
  };
}

const id = column('id', 1, INT, 1, { key: true });

describe('diffShapes', () => {
  it('tells a rename in place from a drop and an add without attnums', () => {
    const before = shape([id, column('a', 2, INT), column('b', 3, TEXT)]);
    const renamed = diffShapes(before, shape([id, column('a2', 2, INT), column('b', 3, TEXT)]));
    expect(renamed).toMatchObject({ added: [], dropped: [], renamed: [{ from: 'a', to: 'a2' }] });
    const replaced = diffShapes(before, shape([id, column('b', 2, TEXT), column('c', 3, INT)]));
    expect(replaced).toMatchObject({ added: ['c'], dropped: ['a'], renamed: [] });
  });

  it('uses attnums to tell a rename of the last column from a drop and an add', () => {
    const before = shape([id, column('a', 2, INT, 2)]);
    expect(diffShapes(before, shape([id, column('z', 2, INT, 2)]))).toMatchObject({
      renamed: [{ from: 'a', to: 'z' }],
      added: [],
      dropped: [],
    });
    expect(diffShapes(before, shape([id, column('z', 2, INT, 3)]))).toMatchObject({
      renamed: [],
      added: ['z'],
      dropped: ['a'],
    });
  });

  it('reports type, nullability, key and identity changes', () => {
    const before = shape([id, column('n', 2, INT, 2, { nullable: true })]);
    const after = shape(
      [
        { ...id, key: false },
        column('n', 2, { typeName: 'int8', typeOid: 20, typeMod: -1 }, 2, { nullable: false, key: true }),
      ],
      { primaryKeyColumnNames: ['n'], replicaIdentity: 'full' },
    );
    const diff = diffShapes(before, after);
    expect(diff).toMatchObject({
      typeChanged: [{ column: 'n', from: 'int4', to: 'int8' }],
      nullabilityChanged: [{ column: 'n', nullable: false }],
      keyChanged: { from: ['id'], to: ['n'] },
      replicaIdentityChanged: { from: 'default', to: 'full' },
    });
    expect(describeDiff(diff)).toBe(
      'type of n: int4 -> int8; n not null; key (id) -> (n); replica identity default -> full',
    );
  });

  it('names the old table of a renamed one', () => {
    const before = shape([id], { table: 'old' });
    expect(diffShapes(before, shape([id])).renamedFrom).toBe('public.old');
  });
});

describe('sameShape', () => {
  it('ignores catalog details that one side lacks, not those that differ', () => {
    const a = shape([id, column('n', 2, INT, null)]);
    expect(sameShape(a, shape([id, column('n', 2, INT, 2, { nullable: true })]))).toBe(true);
    expect(sameShape(shape([id, column('n', 2, INT, 3)]), shape([id, column('n', 2, INT, 2)]))).toBe(false);
    expect(sameShape(a, shape([id, column('n', 2, TEXT)]))).toBe(false);
    expect(sameShape(a, shape([id, column('n', 2, INT)], { relationId: 101 }))).toBe(false);
  });
});
