/**
 * Reading the sales figures (the API, the CLI, the dashboard): the service's database opened
 * read-only while its sink writes (WAL), money formatted back to exact decimal text.
 *
 * Tie order of the top lists: revenue (spend) descending, then the product (customer) id ascending.
 */
import Database from 'better-sqlite3';
import { formatScaled } from '../commerce/money.ts';

export interface DailySales {
  readonly day: string;
  readonly orders: number;
  readonly revenue: string;
}
export interface ProductSales {
  readonly productId: number;
  readonly items: number;
  readonly units: number;
  readonly revenue: string;
}
export interface CustomerSpend {
  readonly customerId: number;
  readonly orders: number;
  readonly spend: string;
}
export interface StatusCount {
  readonly status: string;
  readonly orders: number;
}

export type AnalyticsReport = 'daily' | 'top-products' | 'top-customers' | 'statuses';
export const ANALYTICS_REPORTS: readonly AnalyticsReport[] = [
  'daily',
  'top-products',
  'top-customers',
  'statuses',
];

export class AnalyticsReader {
  readonly #db: Database.Database;
  readonly #scale: number;

  constructor(file: string, scale: number) {
    this.#db = new Database(file, { readonly: true, fileMustExist: true, timeout: 5_000 });
    this.#scale = scale;
  }

  #all<T>(sql: string, ...params: unknown[]): T[] {
    return this.#db
      .prepare(sql)
      .safeIntegers(true)
      .all(...params) as T[];
  }

  daily(from?: string, to?: string): DailySales[] {
    return this.#all<{ day: string; orders: bigint; revenue: bigint }>(
      'select * from sa_daily where day >= ? and day <= ? order by day',
      from ?? '0000-00-00',
      to ?? '9999-99-99',
    ).map((r) => ({ day: r.day, orders: Number(r.orders), revenue: formatScaled(r.revenue, this.#scale) }));
  }

  topProducts(limit = 100): ProductSales[] {
    return this.#all<{ product_id: bigint; items: bigint; units: bigint; revenue: bigint }>(
      'select * from sa_products order by revenue desc, product_id limit ?',
      limit,
    ).map((r) => ({
      productId: Number(r.product_id),
      items: Number(r.items),
      units: Number(r.units),
      revenue: formatScaled(r.revenue, this.#scale),
    }));
  }

  topCustomers(limit = 100): CustomerSpend[] {
    return this.#all<{ customer_id: bigint; orders: bigint; spend: bigint }>(
      'select * from sa_customers order by spend desc, customer_id limit ?',
      limit,
    ).map((r) => ({
      customerId: Number(r.customer_id),
      orders: Number(r.orders),
      spend: formatScaled(r.spend, this.#scale),
    }));
  }

  statuses(): StatusCount[] {
    return this.#all<{ status: string; orders: bigint }>('select * from sa_statuses order by status').map(
      (r) => ({ status: r.status, orders: Number(r.orders) }),
    );
  }

  report(which: AnalyticsReport, limit?: number): unknown[] {
    switch (which) {
      case 'daily':
        return this.daily();
      case 'top-products':
        return this.topProducts(limit);
      case 'top-customers':
        return this.topCustomers(limit);
      case 'statuses':
        return this.statuses();
    }
  }

  close(): void {
    this.#db.close();
  }
}
