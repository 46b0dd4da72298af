// Every model's sample data, in the order `npm start` shows them.
import type { Sample } from './sample.ts';
import { collectSample } from './collect.ts';
import { policycenterSample } from './policycenter.ts';
import { smartofficeSample } from './smartoffice.ts';
import { superofficeSample } from './superoffice.ts';

export const samples: readonly Sample[] = [smartofficeSample, collectSample, policycenterSample, superofficeSample];
